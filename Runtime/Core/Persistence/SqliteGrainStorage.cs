using CloudEdge.Runtime.Serialization;
using Microsoft.Data.Sqlite;

namespace CloudEdge.Runtime.Persistence;

/// <summary>Where the SQLite grain storage keeps its database.</summary>
public sealed class SqliteGrainStorageOptions
{
    /// <summary>Directory of the database file (<c>grains.db</c>); created if missing. Default: <c>data</c> under the content root.</summary>
    public string? DataDirectory { get; set; }

    /// <summary>A full connection string; overrides <see cref="DataDirectory"/>.</summary>
    public string? ConnectionString { get; set; }

    internal string ResolveConnectionString(string defaultDirectory, string fileName)
    {
        if (!string.IsNullOrWhiteSpace(ConnectionString))
        {
            return ConnectionString;
        }

        var directory = string.IsNullOrWhiteSpace(DataDirectory) ? defaultDirectory : DataDirectory;
        Directory.CreateDirectory(directory);
        return new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(directory, fileName),
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
    }
}

/// <summary>
/// Grain storage in an embedded SQLite database (WAL mode): one table keyed by state name and grain id,
/// with an ETag per record for optimistic concurrency. It survives restarts.
/// </summary>
internal sealed class SqliteGrainStorage(string name, string connectionString, GrainJson json) : IGrainStorage
{
    private readonly SqliteDatabase database = new(
        connectionString,
        schema: """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS grain_state (
                state_name   TEXT NOT NULL,
                grain_id     TEXT NOT NULL,
                etag         TEXT NOT NULL,
                payload      TEXT NOT NULL,
                modified_utc TEXT NOT NULL,
                PRIMARY KEY (state_name, grain_id)
            ) WITHOUT ROWID;
            """,
        connectionPragmas: "PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 30000;");

    public async Task ReadStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT etag, payload FROM grain_state WHERE state_name = $state AND grain_id = $grain";
        command.Parameters.AddWithValue("$state", stateName);
        command.Parameters.AddWithValue("$grain", grainId.ToString());
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (await reader.ReadAsync(cancellationToken))
        {
            grainState.ETag = reader.GetString(0);
            grainState.State = json.Deserialize<TState>(reader.GetString(1)) ?? PersistentState<TState>.CreateDefault();
            grainState.RecordExists = true;
        }
        else
        {
            grainState.ETag = null;
            grainState.State = PersistentState<TState>.CreateDefault();
            grainState.RecordExists = false;
        }
    }

    public async Task WriteStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState, CancellationToken cancellationToken)
    {
        var payload = json.Serialize(grainState.State);
        var etag = Guid.NewGuid().ToString("N");
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = grainState.ETag is null
            ? "INSERT INTO grain_state (state_name, grain_id, etag, payload, modified_utc) VALUES ($state, $grain, $etag, $payload, $now) ON CONFLICT DO NOTHING"
            : "UPDATE grain_state SET etag = $etag, payload = $payload, modified_utc = $now WHERE state_name = $state AND grain_id = $grain AND etag = $expected";
        command.Parameters.AddWithValue("$state", stateName);
        command.Parameters.AddWithValue("$grain", grainId.ToString());
        command.Parameters.AddWithValue("$etag", etag);
        command.Parameters.AddWithValue("$payload", payload);
        command.Parameters.AddWithValue("$now", DateTimeOffset.UtcNow.ToString("O"));
        command.Parameters.AddWithValue("$expected", (object?)grainState.ETag ?? DBNull.Value);
        if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
        {
            throw new InconsistentStateException(
                $"Write of state '{stateName}' of {grainId} to storage '{name}' lost a race with another writer.",
                await ReadEtagAsync(connection, stateName, grainId, cancellationToken), grainState.ETag);
        }

        grainState.ETag = etag;
        grainState.RecordExists = true;
    }

    public async Task ClearStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        if (grainState.ETag is null)
        {
            var stored = await ReadEtagAsync(connection, stateName, grainId, cancellationToken);
            if (stored is not null)
            {
                throw new InconsistentStateException($"Clear of state '{stateName}' of {grainId} in storage '{name}' lost a race with another writer.", stored, null);
            }
        }
        else
        {
            command.CommandText = "DELETE FROM grain_state WHERE state_name = $state AND grain_id = $grain AND etag = $expected";
            command.Parameters.AddWithValue("$state", stateName);
            command.Parameters.AddWithValue("$grain", grainId.ToString());
            command.Parameters.AddWithValue("$expected", grainState.ETag);
            if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
            {
                throw new InconsistentStateException(
                    $"Clear of state '{stateName}' of {grainId} in storage '{name}' lost a race with another writer.",
                    await ReadEtagAsync(connection, stateName, grainId, cancellationToken), grainState.ETag);
            }
        }

        grainState.ETag = null;
        grainState.RecordExists = false;
    }

    private static async Task<string?> ReadEtagAsync(SqliteConnection connection, string stateName, GrainId grainId, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT etag FROM grain_state WHERE state_name = $state AND grain_id = $grain";
        command.Parameters.AddWithValue("$state", stateName);
        command.Parameters.AddWithValue("$grain", grainId.ToString());
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }
}
