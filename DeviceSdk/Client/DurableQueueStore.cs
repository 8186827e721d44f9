using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace CloudEdge.DeviceSdk;

/// <summary>A publish as the durable queue reloads it.</summary>
internal sealed record StoredPublish(long Id, MqttMessage Message, string? TraceParent, string? TraceState);

/// <summary>
/// The durable offline queue's file: one SQLite database per client id, WAL with synchronous=FULL so a row that
/// PublishAsync accepted survives a SIGKILL or power loss. Rows are deleted when their publish is finished; row ids
/// keep the publish order. The highest telemetry sequence queued per device is kept too, so a restarted device can
/// continue its numbering where it stopped.
/// </summary>
internal sealed class DurableQueueStore : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _insert;
    private readonly SqliteCommand _delete;
    private readonly SqliteCommand _sequence;

    public DurableQueueStore(string directory, string clientId)
    {
        Directory.CreateDirectory(directory);
        Path = System.IO.Path.Combine(directory, Uri.EscapeDataString(clientId) + ".queue.db");
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path, Pooling = false }.ToString());
        _connection.Open();
        Execute("""
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = FULL;
            CREATE TABLE IF NOT EXISTS publishes (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                topic TEXT NOT NULL,
                payload BLOB NOT NULL,
                qos INTEGER NOT NULL,
                retain INTEGER NOT NULL,
                properties TEXT NULL,
                traceparent TEXT NULL,
                tracestate TEXT NULL);
            CREATE TABLE IF NOT EXISTS sequences (device TEXT PRIMARY KEY, seq INTEGER NOT NULL);
            """);
        _insert = Prepare("INSERT INTO publishes (topic, payload, qos, retain, properties, traceparent, tracestate) VALUES ($t, $p, $q, $r, $props, $tp, $ts) RETURNING id",
            "$t", "$p", "$q", "$r", "$props", "$tp", "$ts");
        _delete = Prepare("DELETE FROM publishes WHERE id = $id", "$id");
        _sequence = Prepare("INSERT INTO sequences (device, seq) VALUES ($d, $s) ON CONFLICT (device) DO UPDATE SET seq = max(seq, excluded.seq)", "$d", "$s");
    }

    public string Path { get; }

    public List<StoredPublish> Load()
    {
        var list = new List<StoredPublish>();
        using var select = _connection.CreateCommand();
        select.CommandText = "SELECT id, topic, payload, qos, retain, properties, traceparent, tracestate FROM publishes ORDER BY id";
        using var reader = select.ExecuteReader();
        while (reader.Read())
        {
            var properties = reader.IsDBNull(5) ? null : JsonSerializer.Deserialize(reader.GetString(5), StoredPropertiesContext.Default.StoredProperties);
            var message = new MqttMessage
            {
                Topic = reader.GetString(1),
                Payload = (byte[])reader.GetValue(2),
                QoS = (MqttQualityOfService)reader.GetInt32(3),
                Retain = reader.GetInt32(4) != 0,
                PayloadFormat = properties?.PayloadFormat ?? MqttPayloadFormat.Unspecified,
                ContentType = properties?.ContentType,
                MessageExpiryInterval = properties?.MessageExpiryInterval,
                ResponseTopic = properties?.ResponseTopic,
                CorrelationData = properties?.CorrelationData,
                UserProperties = properties?.UserProperties?.Select(p => new MqttUserProperty(p[0], p[1])).ToArray() ?? [],
            };
            list.Add(new StoredPublish(reader.GetInt64(0), message, reader.IsDBNull(6) ? null : reader.GetString(6), reader.IsDBNull(7) ? null : reader.GetString(7)));
        }
        return list;
    }

    /// <summary>The highest sequence ever queued for <paramref name="deviceId"/>, or 0.</summary>
    public long LastSequence(string deviceId)
    {
        using var select = _connection.CreateCommand();
        select.CommandText = "SELECT seq FROM sequences WHERE device = $d";
        select.Parameters.AddWithValue("$d", deviceId);
        return select.ExecuteScalar() is long seq ? seq : 0;
    }

    /// <summary>Writes one publish (and the device's sequence, when it is a reading) in one transaction.</summary>
    public long Append(MqttMessage message, string? traceParent, string? traceState, string? deviceId, long sequence)
    {
        using var transaction = _connection.BeginTransaction();
        _insert.Transaction = transaction;
        _insert.Parameters["$t"].Value = message.Topic;
        _insert.Parameters["$p"].Value = message.Payload.ToArray();
        _insert.Parameters["$q"].Value = (int)message.QoS;
        _insert.Parameters["$r"].Value = message.Retain ? 1 : 0;
        _insert.Parameters["$props"].Value = PropertiesJson(message) ?? (object)DBNull.Value;
        _insert.Parameters["$tp"].Value = traceParent ?? (object)DBNull.Value;
        _insert.Parameters["$ts"].Value = traceState ?? (object)DBNull.Value;
        var id = (long)_insert.ExecuteScalar()!;
        if (deviceId is not null)
        {
            _sequence.Transaction = transaction;
            _sequence.Parameters["$d"].Value = deviceId;
            _sequence.Parameters["$s"].Value = sequence;
            _sequence.ExecuteNonQuery();
        }
        transaction.Commit();
        return id;
    }

    public void Delete(long id)
    {
        _delete.Transaction = null;
        _delete.Parameters["$id"].Value = id;
        _delete.ExecuteNonQuery();
    }

    public void Dispose()
    {
        _insert.Dispose();
        _delete.Dispose();
        _sequence.Dispose();
        _connection.Dispose();
    }

    private static string? PropertiesJson(MqttMessage m)
    {
        if (m.PayloadFormat == MqttPayloadFormat.Unspecified && m.ContentType is null && m.MessageExpiryInterval is null && m.ResponseTopic is null
            && m.CorrelationData is null && m.UserProperties.Count == 0)
        {
            return null;
        }
        var properties = new StoredProperties(m.PayloadFormat, m.ContentType, m.MessageExpiryInterval, m.ResponseTopic, m.CorrelationData?.ToArray(),
            m.UserProperties.Count == 0 ? null : m.UserProperties.Select(p => new[] { p.Name, p.Value }).ToArray());
        return JsonSerializer.Serialize(properties, StoredPropertiesContext.Default.StoredProperties);
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private SqliteCommand Prepare(string sql, params string[] parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var p in parameters) command.Parameters.Add(new SqliteParameter { ParameterName = p });
        return command;
    }
}

internal sealed record StoredProperties(MqttPayloadFormat PayloadFormat, string? ContentType, uint? MessageExpiryInterval, string? ResponseTopic,
    byte[]? CorrelationData, string[][]? UserProperties);

[System.Text.Json.Serialization.JsonSerializable(typeof(StoredProperties))]
internal sealed partial class StoredPropertiesContext : System.Text.Json.Serialization.JsonSerializerContext;
