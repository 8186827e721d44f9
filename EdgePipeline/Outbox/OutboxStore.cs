using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Storage;
using CloudEdge.EdgePipeline.Windows;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudEdge.EdgePipeline.Outbox;

/// <summary>Bounds of the outbox (docs/edge-agent.md, "Outbox policy").</summary>
public sealed class OutboxOptions
{
    /// <summary>Total size of the items' bodies kept for the Silo. Above it, summaries go first (oldest first), then alerts.</summary>
    public long MaxBytes { get; set; } = 64L * 1024 * 1024;
    /// <summary>Summaries older than this are dropped even when there is room.</summary>
    public TimeSpan SummaryMaxAge { get; set; } = TimeSpan.FromDays(7);
    /// <summary>Alerts are kept longest.</summary>
    public TimeSpan AlertMaxAge { get; set; } = TimeSpan.FromDays(30);
}

/// <summary>One item waiting for the Silo.</summary>
internal sealed record OutboxItem(long RowId, string? DeviceId, long Seq, string Type, string Body, string? TraceParent, int Bytes)
{
    public string ItemId(string gatewayId) => $"{gatewayId}:{DeviceId ?? OutboxStore.DropsKey}:{Seq}";
}

/// <summary>Drop counts carried upstream by a <c>drops</c> item.</summary>
internal readonly record struct DropCounts(long Summaries, long Alerts, long Readings)
{
    public bool Any => Summaries + Alerts + Readings > 0;
}

/// <summary>
/// The durable outbox: summaries and alerts are written here (with the per-device seq the Silo's exactly-once
/// depends on) before anything is sent. The pipeline writes inside its own transactions; the uplink reads,
/// acknowledges and dead-letters through this store's own connection.
/// </summary>
internal sealed class OutboxStore : IDisposable
{
    public const string DropsKey = "drops";
    private const string DropsSequence = "#drops";
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly SqliteConnection _connection;
    private readonly Lock _gate = new();
    private readonly OutboxOptions _options;
    private readonly EdgeTelemetry _telemetry;
    private readonly ILogger _logger;
    private long _bytes;

    public OutboxStore(string dataDirectory, OutboxOptions options, EdgeTelemetry telemetry, ILogger? logger = null)
    {
        _options = options;
        _telemetry = telemetry;
        _logger = logger ?? NullLogger.Instance;
        _connection = EdgeDatabase.Open(dataDirectory);
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT COALESCE(SUM(bytes), 0) FROM outbox";
        _bytes = (long)command.ExecuteScalar()!;
        _telemetry.Meter.CreateObservableGauge("cloudedge.edge.outbox.bytes", () => Interlocked.Read(ref _bytes), "By", "Size of the items waiting in the outbox.");
    }

    public long Bytes => Interlocked.Read(ref _bytes);

    public OutboxOptions Options => _options;

    // ---- pipeline side: inside the pipeline's transaction ----

    /// <summary>Writes a window's summary unless that window already has one (a replay after a crash).</summary>
    public bool InsertSummary(SqliteConnection connection, SqliteTransaction transaction, WindowAccumulator window, string traceParent, DateTimeOffset now)
    {
        using (var exists = connection.CreateCommand())
        {
            exists.Transaction = transaction;
            exists.CommandText = "SELECT 1 FROM outbox WHERE window_key = $k";
            exists.Parameters.AddWithValue("$k", window.Key);
            if (exists.ExecuteScalar() is not null) return false;
        }
        var body = Json(w =>
        {
            w.WriteString("windowStart", Format(window.Start));
            w.WriteString("windowEnd", Format(window.End));
            w.WriteString("kind", SensorKinds.Name(window.Kind));
            w.WriteNumber("count", window.Count);
            w.WriteNumber("min", window.Min);
            w.WriteNumber("max", window.Max);
            w.WriteNumber("mean", window.Mean);
            w.WriteNumber("stddev", window.StdDev);
            w.WriteNumber("maxScore", window.MaxScore);
            w.WriteNumber("anomalyCount", window.AnomalyCount);
            w.WriteString("modelVersion", window.ModelVersion);
            w.WriteStartArray("links");
            foreach (var link in window.Links) w.WriteStringValue(link);
            w.WriteEndArray();
        });
        Insert(connection, transaction, window.DeviceId, window.DeviceId, "summary", body, traceParent, now, window.Key);
        return true;
    }

    public void InsertAlert(SqliteConnection connection, SqliteTransaction transaction, SensorReading reading, double score, double threshold, string modelVersion, string traceParent, DateTimeOffset now)
    {
        var body = Json(w =>
        {
            w.WriteString("at", Format(reading.Timestamp));
            w.WriteString("kind", SensorKinds.Name(reading.Kind));
            w.WriteNumber("value", reading.Value);
            w.WriteNumber("score", score);
            w.WriteNumber("threshold", threshold);
            w.WriteString("modelVersion", modelVersion);
            w.WriteNumber("readingSeq", reading.Seq);
        });
        Insert(connection, transaction, reading.DeviceId, reading.DeviceId, "alert", body, traceParent, now, null);
    }

    /// <summary>
    /// Applies the bounds: age first when <paramref name="checkAge"/> (summaries after
    /// <see cref="OutboxOptions.SummaryMaxAge"/>, alerts after <see cref="OutboxOptions.AlertMaxAge"/>), then size
    /// (oldest summaries, then oldest alerts; drops items are never dropped). Every drop goes into a <c>drops</c>
    /// item in the same transaction. The age check scans the outbox, so the pipeline runs it about once a minute;
    /// the size check costs nothing while the outbox is under its bound.
    /// </summary>
    public DropCounts Enforce(SqliteConnection connection, SqliteTransaction transaction, DateTimeOffset now, bool checkAge = true)
    {
        var expired = checkAge
            ? new DropCounts(
                DeleteWhere(connection, transaction, "type = 'summary' AND created < $c", (now - _options.SummaryMaxAge).UtcTicks),
                DeleteWhere(connection, transaction, "type = 'alert' AND created < $c", (now - _options.AlertMaxAge).UtcTicks),
                0)
            : default;
        if (expired.Any) ReportDrops(connection, transaction, expired, "expired", now);

        long fullSummaries = 0, fullAlerts = 0;
        while (Interlocked.Read(ref _bytes) > _options.MaxBytes)
        {
            var n = DeleteOldest(connection, transaction, "summary");
            if (n > 0)
            {
                fullSummaries += n;
                continue;
            }
            n = DeleteOldest(connection, transaction, "alert");
            if (n == 0) break;
            fullAlerts += n;
        }
        var full = new DropCounts(fullSummaries, fullAlerts, 0);
        if (full.Any) ReportDrops(connection, transaction, full, "outbox_full", now);
        return new DropCounts(expired.Summaries + full.Summaries, expired.Alerts + full.Alerts, 0);
    }

    /// <summary>Counts, logs and writes a <c>drops</c> item for the Silo (readings lost at ingest come here too).</summary>
    public void ReportDrops(SqliteConnection connection, SqliteTransaction transaction, DropCounts counts, string reason, DateTimeOffset now)
    {
        if (counts.Summaries > 0) _telemetry.OutboxDropped.Add(counts.Summaries, new("type", "summary"), new("reason", reason));
        if (counts.Alerts > 0) _telemetry.OutboxDropped.Add(counts.Alerts, new("type", "alert"), new("reason", reason));
        _logger.LogWarning("Dropped {Summaries} summaries, {Alerts} alerts, {Readings} readings ({Reason}); reported upstream in a drops item",
            counts.Summaries, counts.Alerts, counts.Readings, reason);
        InsertDrops(connection, transaction, counts, reason, now);
    }

    // ---- uplink side: the store's own connection ----

    /// <summary>The oldest items first (insertion order, so each device's items are in seq order).</summary>
    public List<OutboxItem> ReadBatch(int maxItems, long maxBytes) =>
        Read("SELECT id, device, seq, type, body, traceparent, bytes FROM outbox ORDER BY id LIMIT $n", maxItems, maxBytes);

    /// <summary>
    /// The batch of an urgent request: only the items of devices that have an alert waiting, oldest first, each
    /// device's up to and including its last alert. Every item of such a device older than its alert is in it, so
    /// each device's items still leave in seq order; the other devices' items wait for the next ordinary batch.
    /// The alerts are found through <c>outbox_type</c>, and the scan by id stops at the newest alert.
    /// </summary>
    public List<OutboxItem> ReadAlertingBatch(int maxItems, long maxBytes) =>
        Read("""
            WITH alerting AS MATERIALIZED (SELECT device, MAX(id) AS last FROM outbox WHERE type = 'alert' GROUP BY device)
            SELECT o.id, o.device, o.seq, o.type, o.body, o.traceparent, o.bytes
            FROM outbox o JOIN alerting a ON a.device = o.device
            WHERE o.id <= a.last AND o.id <= (SELECT MAX(id) FROM outbox WHERE type = 'alert')
            ORDER BY o.id LIMIT $n
            """, maxItems, maxBytes);

    private List<OutboxItem> Read(string query, int maxItems, long maxBytes)
    {
        lock (_gate)
        {
            var items = new List<OutboxItem>();
            using var command = _connection.CreateCommand();
            command.CommandText = query;
            command.Parameters.AddWithValue("$n", maxItems);
            using var reader = command.ExecuteReader();
            long total = 0;
            while (reader.Read())
            {
                var bytes = reader.GetInt32(6);
                if (items.Count > 0 && total + bytes > maxBytes) break;
                total += bytes;
                items.Add(new OutboxItem(reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt64(2), reader.GetString(3),
                    reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5), bytes));
            }
            return items;
        }
    }

    /// <summary>Deletes items the Silo acknowledged (applied or duplicate).</summary>
    public void Acknowledge(IReadOnlyCollection<OutboxItem> items)
    {
        if (items.Count == 0) return;
        lock (_gate)
        {
            using var transaction = _connection.BeginTransaction();
            using var command = _connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "DELETE FROM outbox WHERE id = $id RETURNING bytes";
            var id = command.Parameters.Add("$id", SqliteType.Integer);
            long freed = 0;
            foreach (var item in items)
            {
                id.Value = item.RowId;
                if (command.ExecuteScalar() is long bytes) freed += bytes;
            }
            transaction.Commit();
            Interlocked.Add(ref _bytes, -freed);
        }
    }

    /// <summary>Moves items the Silo rejected permanently to the dead-letter table.</summary>
    public void DeadLetter(IReadOnlyCollection<(OutboxItem Item, string Code)> rejected, string gatewayId, DateTimeOffset now)
    {
        if (rejected.Count == 0) return;
        lock (_gate)
        {
            using var transaction = _connection.BeginTransaction();
            long freed = 0;
            foreach (var (item, code) in rejected)
            {
                using var delete = _connection.CreateCommand();
                delete.Transaction = transaction;
                delete.CommandText = "DELETE FROM outbox WHERE id = $id RETURNING bytes";
                delete.Parameters.AddWithValue("$id", item.RowId);
                if (delete.ExecuteScalar() is not long bytes) continue;
                freed += bytes;
                using var insert = _connection.CreateCommand();
                insert.Transaction = transaction;
                insert.CommandText = "INSERT INTO dead_letter(item_id, type, device, seq, body, code, at) VALUES($i, $t, $d, $s, $b, $c, $a)";
                insert.Parameters.AddWithValue("$i", item.ItemId(gatewayId));
                insert.Parameters.AddWithValue("$t", item.Type);
                insert.Parameters.AddWithValue("$d", (object?)item.DeviceId ?? DBNull.Value);
                insert.Parameters.AddWithValue("$s", item.Seq);
                insert.Parameters.AddWithValue("$b", item.Body);
                insert.Parameters.AddWithValue("$c", code);
                insert.Parameters.AddWithValue("$a", now.UtcTicks);
                insert.ExecuteNonQuery();
                _telemetry.DeadLettered.Add(1, new KeyValuePair<string, object?>("code", code));
                _logger.LogWarning("Outbox item {ItemId} rejected by the Silo ({Code}); moved to the dead-letter table", item.ItemId(gatewayId), code);
            }
            transaction.Commit();
            Interlocked.Add(ref _bytes, -freed);
        }
    }

    public long Count(string? type = null) => Scalar(type is null ? "SELECT COUNT(*) FROM outbox" : "SELECT COUNT(*) FROM outbox WHERE type = $t", type);

    public long DeadLetterCount() => Scalar("SELECT COUNT(*) FROM dead_letter", null);

    public List<(string ItemId, string Code)> DeadLetters()
    {
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT item_id, code FROM dead_letter ORDER BY id";
            using var reader = command.ExecuteReader();
            var list = new List<(string, string)>();
            while (reader.Read()) list.Add((reader.GetString(0), reader.GetString(1)));
            return list;
        }
    }

    public void Dispose()
    {
        lock (_gate) _connection.Dispose();
    }

    internal static string Format(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private long Scalar(string sql, string? type)
    {
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = sql;
            if (type is not null) command.Parameters.AddWithValue("$t", type);
            return (long)command.ExecuteScalar()!;
        }
    }

    private void InsertDrops(SqliteConnection connection, SqliteTransaction transaction, DropCounts counts, string reason, DateTimeOffset now)
    {
        var body = Json(w =>
        {
            w.WriteNumber("summaries", counts.Summaries);
            w.WriteNumber("alerts", counts.Alerts);
            w.WriteNumber("readings", counts.Readings);
            w.WriteString("reason", reason);
        });
        Insert(connection, transaction, null, DropsSequence, "drops", body, null, now, null);
    }

    private void Insert(SqliteConnection connection, SqliteTransaction transaction, string? device, string sequenceKey, string type, string body, string? traceParent, DateTimeOffset now, string? windowKey)
    {
        long seq;
        using (var next = connection.CreateCommand())
        {
            next.Transaction = transaction;
            next.CommandText = "INSERT INTO sequences(key, last) VALUES($k, 1) ON CONFLICT(key) DO UPDATE SET last = last + 1 RETURNING last";
            next.Parameters.AddWithValue("$k", sequenceKey);
            seq = (long)next.ExecuteScalar()!;
        }
        var bytes = Encoding.UTF8.GetByteCount(body) + (traceParent?.Length ?? 0) + (device?.Length ?? 0) + 64;
        using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = "INSERT INTO outbox(device, seq, type, body, traceparent, created, bytes, window_key) VALUES($d, $s, $t, $b, $tp, $c, $n, $w)";
        insert.Parameters.AddWithValue("$d", (object?)device ?? DBNull.Value);
        insert.Parameters.AddWithValue("$s", seq);
        insert.Parameters.AddWithValue("$t", type);
        insert.Parameters.AddWithValue("$b", body);
        insert.Parameters.AddWithValue("$tp", (object?)traceParent ?? DBNull.Value);
        insert.Parameters.AddWithValue("$c", now.UtcTicks);
        insert.Parameters.AddWithValue("$n", bytes);
        insert.Parameters.AddWithValue("$w", (object?)windowKey ?? DBNull.Value);
        insert.ExecuteNonQuery();
        Interlocked.Add(ref _bytes, bytes);
    }

    private long DeleteWhere(SqliteConnection connection, SqliteTransaction transaction, string where, long cutoff)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"DELETE FROM outbox WHERE {where} RETURNING bytes";
        command.Parameters.AddWithValue("$c", cutoff);
        return SumDeleted(command);
    }

    private long DeleteOldest(SqliteConnection connection, SqliteTransaction transaction, string type)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        // A small slice at a time: the loop stops as soon as the outbox is back under its bound.
        command.CommandText = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE type = $t ORDER BY id LIMIT 16) RETURNING bytes";
        command.Parameters.AddWithValue("$t", type);
        return SumDeleted(command);
    }

    private long SumDeleted(SqliteCommand command)
    {
        long count = 0, freed = 0;
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                count++;
                freed += reader.GetInt64(0);
            }
        }
        Interlocked.Add(ref _bytes, -freed);
        return count;
    }

    private static string Json(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartObject();
            write(writer);
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
