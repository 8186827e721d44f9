using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.Mqtt.Broker;

/// <summary>
/// <see cref="IMqttBrokerStore"/> in a SQLite file (WAL, synchronous=FULL: a committed batch survives power loss).
/// Tables <c>mqtt_sessions(client_id, queued, state)</c> and <c>mqtt_retained(topic, message)</c>.
/// </summary>
public sealed class SqliteMqttBrokerStore : IMqttBrokerStore, IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly SemaphoreSlim _gate = new(1, 1);

    public SqliteMqttBrokerStore(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _connection.Open();
        Execute("""
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous=FULL;
            CREATE TABLE IF NOT EXISTS mqtt_sessions (client_id TEXT PRIMARY KEY, queued INTEGER NOT NULL, state BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS mqtt_retained (topic TEXT PRIMARY KEY, message BLOB NOT NULL);
            """);
    }

    public async Task<MqttStoredState> LoadAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return new MqttStoredState(
                await ReadAllAsync("SELECT client_id, state FROM mqtt_sessions", cancellationToken).ConfigureAwait(false),
                await ReadAllAsync("SELECT topic, message FROM mqtt_retained", cancellationToken).ConfigureAwait(false));
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task WriteAsync(IReadOnlyList<MqttStoreWrite> writes, CancellationToken cancellationToken)
    {
        if (writes.Count == 0) return;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var transaction = _connection.BeginTransaction();
            using var upsertSession = Command("INSERT INTO mqtt_sessions (client_id, queued, state) VALUES ($key, $summary, $value) ON CONFLICT(client_id) DO UPDATE SET queued = excluded.queued, state = excluded.state", transaction);
            using var deleteSession = Command("DELETE FROM mqtt_sessions WHERE client_id = $key", transaction);
            using var upsertRetained = Command("INSERT INTO mqtt_retained (topic, message) VALUES ($key, $value) ON CONFLICT(topic) DO UPDATE SET message = excluded.message", transaction);
            using var deleteRetained = Command("DELETE FROM mqtt_retained WHERE topic = $key", transaction);
            foreach (var write in writes)
            {
                var command = (write.Kind, write.Value is null) switch
                {
                    (MqttStoreRecordKind.Session, false) => upsertSession,
                    (MqttStoreRecordKind.Session, true) => deleteSession,
                    (_, false) => upsertRetained,
                    _ => deleteRetained,
                };
                command.Parameters["$key"].Value = write.Key;
                if (write.Value is not null) command.Parameters["$value"].Value = write.Value;
                if (command == upsertSession) command.Parameters["$summary"].Value = write.Summary;
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private SqliteCommand Command(string sql, SqliteTransaction transaction)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        command.Parameters.Add("$key", SqliteType.Text);
        if (sql.Contains("$value", StringComparison.Ordinal)) command.Parameters.Add("$value", SqliteType.Blob);
        if (sql.Contains("$summary", StringComparison.Ordinal)) command.Parameters.Add("$summary", SqliteType.Integer);
        return command;
    }

    private async Task<List<KeyValuePair<string, byte[]>>> ReadAllAsync(string sql, CancellationToken cancellationToken)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        var rows = new List<KeyValuePair<string, byte[]>>();
        using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false)) rows.Add(new(reader.GetString(0), (byte[])reader.GetValue(1)));
        return rows;
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public void Dispose()
    {
        _connection.Dispose();
        _gate.Dispose();
    }
}

public static class MqttBrokerStoreServiceCollectionExtensions
{
    /// <summary>Keeps the broker's persistent sessions and retained messages in a SQLite file (see docs/mqtt.md, "Persistence").</summary>
    public static IServiceCollection AddMqttBrokerSqliteStore(this IServiceCollection services, string path)
    {
        services.AddSingleton<IMqttBrokerStore>(_ => new SqliteMqttBrokerStore(path));
        return services;
    }
}
