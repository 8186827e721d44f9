using CloudEdge.EdgePipeline.Storage;
using Microsoft.Data.Sqlite;

namespace CloudEdge.EdgePipeline.Ingest;

/// <summary>
/// Accepted readings, committed before the sensor's acknowledgement goes out, kept until their window's summary
/// is in the outbox. The state key <c>processed</c> is the highest reading id whose alerts and window updates are
/// committed: after a crash, readings above it are processed again (alerts included), readings at or below it
/// only rebuild the open windows.
/// Rows are appended in id order and leave it as a prefix (<see cref="PruneBelow"/>): no secondary index, because an
/// index keyed by device scatters every group commit over hundreds of index pages, and that write volume (not the
/// row count) is what bounded the journal's throughput. Which windows are already summarised is kept per window in
/// <c>closed_windows</c>, so a restart rebuilds only the open ones from the rows still present.
/// </summary>
internal static class ReadingJournal
{
    public const string ProcessedKey = "journal.processed";

    /// <summary>The id the next appended reading gets: above every row present and above the processed mark, so a
    /// reading journaled after the journal emptied is never taken for one already processed.</summary>
    public static long NextId(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT MAX(COALESCE((SELECT MAX(id) FROM readings), 0), COALESCE((SELECT value FROM state WHERE key = $k), 0)) + 1";
        command.Parameters.AddWithValue("$k", ProcessedKey);
        return (long)command.ExecuteScalar()!;
    }

    /// <summary>Appends the readings with ids <paramref name="firstId"/>, <paramref name="firstId"/> + 1, ... (sets each entry's id).</summary>
    public static void Append(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<JournaledReading> readings, long firstId)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO readings(id, device, kind, value, ts, seq, received, window_start, traceparent, tracestate)
            VALUES($id, $d, $k, $v, $t, $s, $r, $w, $tp, $ts)
            """;
        var id = command.Parameters.Add("$id", SqliteType.Integer);
        var d = command.Parameters.Add("$d", SqliteType.Text);
        var k = command.Parameters.Add("$k", SqliteType.Integer);
        var v = command.Parameters.Add("$v", SqliteType.Real);
        var t = command.Parameters.Add("$t", SqliteType.Integer);
        var s = command.Parameters.Add("$s", SqliteType.Integer);
        var r = command.Parameters.Add("$r", SqliteType.Integer);
        var w = command.Parameters.Add("$w", SqliteType.Integer);
        var tp = command.Parameters.Add("$tp", SqliteType.Text);
        var tst = command.Parameters.Add("$ts", SqliteType.Text);
        command.Prepare();
        var next = firstId;
        foreach (var entry in readings)
        {
            var reading = entry.Reading;
            entry.Id = next++;
            id.Value = entry.Id;
            d.Value = reading.DeviceId;
            k.Value = (int)reading.Kind;
            v.Value = reading.Value;
            t.Value = reading.Timestamp.UtcTicks;
            s.Value = reading.Seq;
            r.Value = reading.ReceivedAt.UtcTicks;
            w.Value = entry.WindowStart.UtcTicks;
            tp.Value = (object?)reading.TraceParent ?? DBNull.Value;
            tst.Value = (object?)reading.TraceState ?? DBNull.Value;
            command.ExecuteNonQuery();
        }
    }

    /// <summary>Every journaled reading, in acceptance order.</summary>
    public static List<JournaledReading> ReadAll(SqliteConnection connection)
    {
        var result = new List<JournaledReading>();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, device, kind, value, ts, seq, received, window_start, traceparent, tracestate FROM readings ORDER BY id";
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var reading = new SensorReading(
                reader.GetString(1),
                (SensorKind)reader.GetInt32(2),
                reader.GetDouble(3),
                new DateTimeOffset(reader.GetInt64(4), TimeSpan.Zero),
                reader.GetInt64(5),
                reader.IsDBNull(8) ? null : reader.GetString(8),
                reader.IsDBNull(9) ? null : reader.GetString(9))
            {
                ReceivedAt = new DateTimeOffset(reader.GetInt64(6), TimeSpan.Zero),
            };
            result.Add(new JournaledReading(reading, new DateTimeOffset(reader.GetInt64(7), TimeSpan.Zero)) { Id = reader.GetInt64(0) });
        }
        return result;
    }

    /// <summary>
    /// Records that a window is summarised (same transaction as its summary) with the highest journal id it holds.
    /// False when it already was: a reading that arrived after its window closed must not make a second summary.
    /// </summary>
    public static bool MarkClosed(SqliteConnection connection, SqliteTransaction transaction, string windowKey, long lastId)
    {
        if (EdgeDatabase.Execute(connection, transaction, "INSERT INTO closed_windows(key, last_id) VALUES($k, $l) ON CONFLICT(key) DO NOTHING", ("$k", windowKey), ("$l", lastId)) == 1)
        {
            return true;
        }
        EdgeDatabase.Execute(connection, transaction, "UPDATE closed_windows SET last_id = MAX(last_id, $l) WHERE key = $k", ("$k", windowKey), ("$l", lastId));
        return false;
    }

    /// <summary>Keys of the summarised windows some of whose readings are still in the journal.</summary>
    public static HashSet<string> ClosedWindows(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT key FROM closed_windows";
        using var reader = command.ExecuteReader();
        var keys = new HashSet<string>(StringComparer.Ordinal);
        while (reader.Read()) keys.Add(reader.GetString(0));
        return keys;
    }

    /// <summary>
    /// Deletes the readings below <paramref name="boundary"/> (the caller passes the lowest id still in an open
    /// window or inside the redelivery horizon) and the closed-window marks no remaining reading needs.
    /// </summary>
    public static void PruneBelow(SqliteConnection connection, SqliteTransaction transaction, long boundary) =>
        EdgeDatabase.Execute(connection, transaction, "DELETE FROM readings WHERE id < $b; DELETE FROM closed_windows WHERE last_id < $b;", ("$b", boundary));

    public static long Count(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM readings";
        return (long)command.ExecuteScalar()!;
    }
}

/// <summary>A reading with its journal row id and the window it belongs to.</summary>
internal sealed class JournaledReading(SensorReading reading, DateTimeOffset windowStart)
{
    public SensorReading Reading { get; } = reading;
    public DateTimeOffset WindowStart { get; } = windowStart;
    public long Id { get; set; }
}
