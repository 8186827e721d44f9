using CloudEdge.Runtime.Persistence;
using Microsoft.Data.Sqlite;

namespace CloudEdge.Runtime.Reminders;

/// <summary>A durable reminder: which grain, when the first tick is, how often.</summary>
internal sealed record ReminderEntry(GrainId GrainId, string Name, DateTimeOffset StartAt, TimeSpan Period);

/// <summary>Where reminders are stored (Orleans' IReminderTable).</summary>
internal interface IReminderTable
{
    Task<IReadOnlyList<ReminderEntry>> ReadAllAsync(CancellationToken cancellationToken);

    Task UpsertAsync(ReminderEntry entry, CancellationToken cancellationToken);

    Task<bool> RemoveAsync(GrainId grainId, string name, CancellationToken cancellationToken);
}

/// <summary>Options for the SQLite reminder table.</summary>
public sealed class SqliteReminderOptions
{
    /// <summary>Directory of the database file (<c>reminders.db</c>); default: <c>data</c> under the content root.</summary>
    public string? DataDirectory { get; set; }

    /// <summary>A full connection string; overrides <see cref="DataDirectory"/>.</summary>
    public string? ConnectionString { get; set; }
}

/// <summary>Reminders kept in memory: they survive deactivation but not a process restart.</summary>
internal sealed class InMemoryReminderTable : IReminderTable
{
    private readonly Dictionary<(GrainId, string), ReminderEntry> entries = [];
    private readonly Lock gate = new();

    public Task<IReadOnlyList<ReminderEntry>> ReadAllAsync(CancellationToken cancellationToken)
    {
        lock (gate)
        {
            return Task.FromResult<IReadOnlyList<ReminderEntry>>(entries.Values.ToArray());
        }
    }

    public Task UpsertAsync(ReminderEntry entry, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            entries[(entry.GrainId, entry.Name)] = entry;
        }

        return Task.CompletedTask;
    }

    public Task<bool> RemoveAsync(GrainId grainId, string name, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            return Task.FromResult(entries.Remove((grainId, name)));
        }
    }
}

/// <summary>Reminders in an embedded SQLite database (WAL mode): they survive restarts.</summary>
internal sealed class SqliteReminderTable(string connectionString) : IReminderTable
{
    private readonly SqliteDatabase database = new(
        connectionString,
        schema: """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS reminders (
                grain_id    TEXT NOT NULL,
                name        TEXT NOT NULL,
                start_at_ms INTEGER NOT NULL,
                period_ms   INTEGER NOT NULL,
                PRIMARY KEY (grain_id, name)
            ) WITHOUT ROWID;
            """);

    public async Task<IReadOnlyList<ReminderEntry>> ReadAllAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT grain_id, name, start_at_ms, period_ms FROM reminders";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var list = new List<ReminderEntry>();
        while (await reader.ReadAsync(cancellationToken))
        {
            list.Add(new ReminderEntry(
                GrainId.Parse(reader.GetString(0)),
                reader.GetString(1),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2)),
                TimeSpan.FromMilliseconds(reader.GetInt64(3))));
        }

        return list;
    }

    public async Task UpsertAsync(ReminderEntry entry, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO reminders (grain_id, name, start_at_ms, period_ms) VALUES ($grain, $name, $start, $period)
            ON CONFLICT (grain_id, name) DO UPDATE SET start_at_ms = excluded.start_at_ms, period_ms = excluded.period_ms
            """;
        command.Parameters.AddWithValue("$grain", entry.GrainId.ToString());
        command.Parameters.AddWithValue("$name", entry.Name);
        command.Parameters.AddWithValue("$start", entry.StartAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$period", (long)entry.Period.TotalMilliseconds);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<bool> RemoveAsync(GrainId grainId, string name, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM reminders WHERE grain_id = $grain AND name = $name";
        command.Parameters.AddWithValue("$grain", grainId.ToString());
        command.Parameters.AddWithValue("$name", name);
        return await command.ExecuteNonQueryAsync(cancellationToken) > 0;
    }

    internal static string ResolveConnectionString(SqliteReminderOptions options, string defaultDirectory) =>
        new SqliteGrainStorageOptions { ConnectionString = options.ConnectionString, DataDirectory = options.DataDirectory }
            .ResolveConnectionString(defaultDirectory, "reminders.db");
}
