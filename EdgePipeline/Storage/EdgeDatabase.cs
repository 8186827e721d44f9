using Microsoft.Data.Sqlite;

namespace CloudEdge.EdgePipeline.Storage;

/// <summary>
/// The agent's one SQLite file (WAL): the reading journal, the outbox, per-device sequences, the dead-letter
/// table. One file so a window's summary enters the outbox and its readings leave the journal in one transaction.
/// The pipeline loop writes through its own connection; the uplink reads and deletes through another.
/// </summary>
internal static class EdgeDatabase
{
    public const string FileName = "edge.db";

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS readings(
            id INTEGER PRIMARY KEY,
            device TEXT NOT NULL,
            kind INTEGER NOT NULL,
            value REAL NOT NULL,
            ts INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            received INTEGER NOT NULL,
            window_start INTEGER NOT NULL,
            traceparent TEXT,
            tracestate TEXT);
        -- Files written by earlier versions indexed the journal by device; it is pruned by id prefix now.
        DROP INDEX IF EXISTS readings_window;
        CREATE TABLE IF NOT EXISTS closed_windows(key TEXT PRIMARY KEY, last_id INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS outbox(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            device TEXT,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            body TEXT NOT NULL,
            traceparent TEXT,
            created INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            window_key TEXT UNIQUE);
        CREATE INDEX IF NOT EXISTS outbox_type ON outbox(type, id);
        CREATE TABLE IF NOT EXISTS sequences(key TEXT PRIMARY KEY, last INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS state(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS dead_letter(
            id INTEGER PRIMARY KEY,
            item_id TEXT NOT NULL,
            type TEXT NOT NULL,
            device TEXT,
            seq INTEGER NOT NULL,
            body TEXT NOT NULL,
            code TEXT NOT NULL,
            at INTEGER NOT NULL);
        """;

    public static SqliteConnection Open(string dataDirectory)
    {
        Directory.CreateDirectory(dataDirectory);
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(dataDirectory, FileName),
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString());
        connection.Open();
        try
        {
            // FULL: a commit survives power loss, not only a process crash; commits are batched so the fsync is shared.
            Execute(connection, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000; PRAGMA foreign_keys=OFF;");
            Execute(connection, Schema);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
        return connection;
    }

    public static void Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public static long GetState(SqliteConnection connection, string key, SqliteTransaction? transaction = null)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT value FROM state WHERE key = $k";
        command.Parameters.AddWithValue("$k", key);
        return command.ExecuteScalar() is long value ? value : 0;
    }

    /// <summary>Runs one statement with named parameters; returns the rows it changed.</summary>
    public static int Execute(SqliteConnection connection, SqliteTransaction transaction, string sql, params ReadOnlySpan<(string Name, object Value)> parameters)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        return command.ExecuteNonQuery();
    }

    public static void SetState(SqliteConnection connection, SqliteTransaction transaction, string key, long value) =>
        Execute(connection, transaction, "INSERT INTO state(key, value) VALUES($k, $v) ON CONFLICT(key) DO UPDATE SET value = excluded.value", ("$k", key), ("$v", value));
}
