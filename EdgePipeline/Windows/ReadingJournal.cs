using CloudEdge.EdgePipeline.Ingest;
using Microsoft.Data.Sqlite;

namespace CloudEdge.EdgePipeline.Windows;

/// <summary>
/// Accepted readings, committed before the sensor's acknowledgement goes out, kept until their window's summary
/// is in the outbox. The state key <c>processed</c> is the highest reading id whose alerts and window updates are
/// committed: after a crash, readings above it are processed again (alerts included), readings at or below it
/// only rebuild the open windows.
/// </summary>
internal static class ReadingJournal
{
    public const string ProcessedKey = "journal.processed";

    public static void Append(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<JournaledReading> readings)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO readings(device, kind, value, ts, seq, received, window_start, traceparent, tracestate)
            VALUES($d, $k, $v, $t, $s, $r, $w, $tp, $ts) RETURNING id
            """;
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
        foreach (var entry in readings)
        {
            var reading = entry.Reading;
            d.Value = reading.DeviceId;
            k.Value = (int)reading.Kind;
            v.Value = reading.Value;
            t.Value = reading.Timestamp.UtcTicks;
            s.Value = reading.Seq;
            r.Value = reading.ReceivedAt.UtcTicks;
            w.Value = entry.WindowStart.UtcTicks;
            tp.Value = (object?)reading.TraceParent ?? DBNull.Value;
            tst.Value = (object?)reading.TraceState ?? DBNull.Value;
            entry.Id = (long)command.ExecuteScalar()!;
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

    public static int Prune(SqliteConnection connection, SqliteTransaction transaction, WindowAccumulator window)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "DELETE FROM readings WHERE device = $d AND kind = $k AND window_start = $w";
        command.Parameters.AddWithValue("$d", window.DeviceId);
        command.Parameters.AddWithValue("$k", (int)window.Kind);
        command.Parameters.AddWithValue("$w", window.Start.UtcTicks);
        return command.ExecuteNonQuery();
    }

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
