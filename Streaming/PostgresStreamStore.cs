using Npgsql;
using NpgsqlTypes;
using Orleans.Runtime;

namespace CloudEdge.Streaming;

/// <summary>An event to append; the store gives it its queue and stream sequence numbers.</summary>
internal readonly record struct NewStreamEvent(Guid EventId, string ItemType, byte[] Payload);

/// <summary>An event as stored.</summary>
internal sealed record StoredStreamEvent(
    long QueueSequence,
    StreamId StreamId,
    long StreamSequence,
    Guid EventId,
    DateTimeOffset Timestamp,
    string? TraceParent,
    string? TraceState,
    byte[] Payload,
    byte[]? RequestContext);

/// <summary>
/// Every SQL statement of one provider (rows keyed by its name) on the tables of 0500_streams.sql. Owns the
/// provider's Npgsql data source, shared by the adapter, the receivers, the notification listener and the log.
/// </summary>
internal sealed class PostgresStreamStore : IAsyncDisposable
{
    /// <summary>The NOTIFY channel; the payload is "queue:provider".</summary>
    public const string NotificationChannel = "cloudedge_streams";

    private const int RetentionBatchSize = 5_000;

    // One statement, hence one transaction: the upsert of the queue head takes its row lock first (the
    // stream head's insert reads from it, which orders the two locks the same way in every append), then
    // the events get consecutive numbers after both heads.
    private const string AppendSql = """
        WITH queue_head AS (
            INSERT INTO cloudedge_stream_queues AS q (provider, queue_id, last_queue_seq)
            VALUES (@provider, @queue_id, @count)
            ON CONFLICT (provider, queue_id) DO UPDATE SET last_queue_seq = q.last_queue_seq + excluded.last_queue_seq
            RETURNING q.last_queue_seq
        ), stream_head AS (
            INSERT INTO cloudedge_stream_heads AS h (provider, stream_namespace, stream_key, last_seq)
            SELECT @provider, @stream_namespace, @stream_key, @count FROM queue_head
            ON CONFLICT (provider, stream_namespace, stream_key) DO UPDATE SET last_seq = h.last_seq + excluded.last_seq
            RETURNING h.last_seq
        )
        INSERT INTO cloudedge_stream_events
            (provider, queue_id, queue_seq, stream_namespace, stream_key, stream_seq, event_id, created_at,
             trace_parent, trace_state, item_type, payload, request_context)
        SELECT @provider, @queue_id, queue_head.last_queue_seq - @count + e.ord, @stream_namespace, @stream_key,
               stream_head.last_seq - @count + e.ord, e.event_id, @created_at, @trace_parent, @trace_state,
               e.item_type, e.payload, @request_context
        FROM queue_head, stream_head,
             unnest(@event_ids, @item_types, @payloads) WITH ORDINALITY AS e(event_id, item_type, payload, ord)
        """;

    private const string EventColumns =
        "queue_seq, stream_namespace, stream_key, stream_seq, event_id, created_at, trace_parent, trace_state, payload, request_context";

    private readonly NpgsqlDataSource dataSource;

    public PostgresStreamStore(string provider, string connectionString)
    {
        Provider = provider;
        dataSource = NpgsqlDataSource.Create(connectionString);
    }

    public string Provider { get; }

    public NpgsqlDataSource DataSource => dataSource;

    /// <summary>Appends the events of one stream in one transaction, committed before this returns.</summary>
    public async Task AppendAsync(
        int queueId,
        StreamId streamId,
        IReadOnlyList<NewStreamEvent> events,
        DateTimeOffset createdAt,
        string? traceParent,
        string? traceState,
        byte[]? requestContext,
        bool notify,
        CancellationToken cancellationToken)
    {
        await using var batch = dataSource.CreateBatch();
        var append = new NpgsqlBatchCommand(AppendSql);
        var parameters = append.Parameters;
        parameters.AddWithValue("provider", Provider);
        parameters.AddWithValue("queue_id", queueId);
        parameters.AddWithValue("count", (long)events.Count);
        parameters.AddWithValue("stream_namespace", Namespace(streamId));
        parameters.AddWithValue("stream_key", streamId.GetKeyAsString());
        parameters.AddWithValue("created_at", createdAt.ToUniversalTime());
        parameters.Add(new NpgsqlParameter("trace_parent", NpgsqlDbType.Text) { Value = (object?)traceParent ?? DBNull.Value });
        parameters.Add(new NpgsqlParameter("trace_state", NpgsqlDbType.Text) { Value = (object?)traceState ?? DBNull.Value });
        parameters.Add(new NpgsqlParameter("request_context", NpgsqlDbType.Bytea) { Value = (object?)requestContext ?? DBNull.Value });
        parameters.AddWithValue("event_ids", events.Select(e => e.EventId).ToArray());
        parameters.AddWithValue("item_types", events.Select(e => e.ItemType).ToArray());
        parameters.AddWithValue("payloads", events.Select(e => e.Payload).ToArray());
        batch.BatchCommands.Add(append);
        if (notify)
        {
            // Within the same implicit transaction: PostgreSQL delivers the notification on commit only.
            var notification = new NpgsqlBatchCommand("SELECT pg_notify(@channel, @payload)");
            notification.Parameters.AddWithValue("channel", NotificationChannel);
            notification.Parameters.AddWithValue("payload", NotificationPayload(queueId));
            batch.BatchCommands.Add(notification);
        }

        try
        {
            await batch.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (NpgsqlException exception) when (ForgetBrokenConnections(exception))
        {
            throw;
        }

        if (append.RecordsAffected != events.Count)
        {
            throw new InvalidOperationException($"Appending {events.Count} events to stream {streamId} stored {append.RecordsAffected}.");
        }
    }

    public string NotificationPayload(int queueId) => $"{queueId}:{Provider}";

    /// <summary>Events of a queue after <paramref name="afterQueueSequence"/>, in queue order, at most <paramref name="max"/>.</summary>
    public async Task<IReadOnlyList<StoredStreamEvent>> ReadQueueAsync(int queueId, long afterQueueSequence, int max, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            $"SELECT {EventColumns} FROM cloudedge_stream_events WHERE provider = @provider AND queue_id = @queue_id AND queue_seq > @after ORDER BY queue_seq LIMIT @max");
        command.Parameters.AddWithValue("provider", Provider);
        command.Parameters.AddWithValue("queue_id", queueId);
        command.Parameters.AddWithValue("after", afterQueueSequence);
        command.Parameters.AddWithValue("max", max);
        return await ReadEventsAsync(command, cancellationToken);
    }

    /// <summary>Events of a stream after <paramref name="afterSequence"/>, ascending, at most <paramref name="max"/>.</summary>
    public async Task<IReadOnlyList<StoredStreamEvent>> ReadStreamAsync(StreamId streamId, long afterSequence, int max, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            $"SELECT {EventColumns} FROM cloudedge_stream_events WHERE provider = @provider AND stream_namespace = @stream_namespace AND stream_key = @stream_key AND stream_seq > @after ORDER BY stream_seq LIMIT @max");
        command.Parameters.AddWithValue("provider", Provider);
        command.Parameters.AddWithValue("stream_namespace", Namespace(streamId));
        command.Parameters.AddWithValue("stream_key", streamId.GetKeyAsString());
        command.Parameters.AddWithValue("after", afterSequence);
        command.Parameters.AddWithValue("max", max);
        return await ReadEventsAsync(command, cancellationToken);
    }

    /// <summary>The last sequence number ever given to the stream, retained or not; 0 if none.</summary>
    public async Task<long> GetLastSequenceAsync(StreamId streamId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT last_seq FROM cloudedge_stream_heads WHERE provider = @provider AND stream_namespace = @stream_namespace AND stream_key = @stream_key");
        command.Parameters.AddWithValue("provider", Provider);
        command.Parameters.AddWithValue("stream_namespace", Namespace(streamId));
        command.Parameters.AddWithValue("stream_key", streamId.GetKeyAsString());
        return await ScalarAsync(command, cancellationToken) is long last ? last : 0;
    }

    public async Task<long> LoadCheckpointAsync(int queueId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            "SELECT delivered_seq FROM cloudedge_stream_checkpoints WHERE provider = @provider AND queue_id = @queue_id");
        command.Parameters.AddWithValue("provider", Provider);
        command.Parameters.AddWithValue("queue_id", queueId);
        return await ScalarAsync(command, cancellationToken) is long delivered ? delivered : 0;
    }

    /// <summary>Moves the queue's checkpoint forward (never back: a silo that lost the queue may still report).</summary>
    public async Task SaveCheckpointAsync(int queueId, long deliveredSequence, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO cloudedge_stream_checkpoints AS c (provider, queue_id, delivered_seq, updated_at)
            VALUES (@provider, @queue_id, @delivered, @now)
            ON CONFLICT (provider, queue_id) DO UPDATE
                SET delivered_seq = GREATEST(c.delivered_seq, excluded.delivered_seq), updated_at = excluded.updated_at
            """);
        command.Parameters.AddWithValue("provider", Provider);
        command.Parameters.AddWithValue("queue_id", queueId);
        command.Parameters.AddWithValue("delivered", deliveredSequence);
        command.Parameters.AddWithValue("now", now.ToUniversalTime());
        await NonQueryAsync(command, cancellationToken);
    }

    /// <summary>Deletes the queue's delivered events (up to <paramref name="checkpoint"/>) created before <paramref name="olderThan"/>.</summary>
    public Task<long> DeleteOlderThanAsync(int queueId, long checkpoint, DateTimeOffset olderThan, CancellationToken cancellationToken) =>
        DeleteInBatchesAsync("""
            WITH doomed AS (
                SELECT queue_seq FROM cloudedge_stream_events
                WHERE provider = @provider AND queue_id = @queue_id AND queue_seq <= @checkpoint AND created_at < @cutoff
                ORDER BY queue_seq LIMIT @batch
            )
            DELETE FROM cloudedge_stream_events e USING doomed
            WHERE e.provider = @provider AND e.queue_id = @queue_id AND e.queue_seq = doomed.queue_seq
            """, queueId, checkpoint, command => command.Parameters.AddWithValue("cutoff", olderThan.ToUniversalTime()), cancellationToken);

    /// <summary>Deletes the queue's delivered events (up to <paramref name="checkpoint"/>) that are not among the last <paramref name="maxPerStream"/> of their stream.</summary>
    public Task<long> DeleteBeyondCountAsync(int queueId, long checkpoint, int maxPerStream, CancellationToken cancellationToken) =>
        DeleteInBatchesAsync("""
            WITH doomed AS (
                SELECT e.queue_seq FROM cloudedge_stream_events e
                JOIN cloudedge_stream_heads h
                  ON h.provider = e.provider AND h.stream_namespace = e.stream_namespace AND h.stream_key = e.stream_key
                WHERE e.provider = @provider AND e.queue_id = @queue_id AND e.queue_seq <= @checkpoint
                  AND e.stream_seq <= h.last_seq - @max_per_stream
                ORDER BY e.queue_seq LIMIT @batch
            )
            DELETE FROM cloudedge_stream_events e USING doomed
            WHERE e.provider = @provider AND e.queue_id = @queue_id AND e.queue_seq = doomed.queue_seq
            """, queueId, checkpoint, command => command.Parameters.AddWithValue("max_per_stream", (long)maxPerStream), cancellationToken);

    private async Task<long> DeleteInBatchesAsync(string sql, int queueId, long checkpoint, Action<NpgsqlCommand> bind, CancellationToken cancellationToken)
    {
        // Batches keep each transaction, and the locks it holds against the queue's readers, short.
        long deleted = 0;
        while (true)
        {
            await using var command = dataSource.CreateCommand(sql);
            command.Parameters.AddWithValue("provider", Provider);
            command.Parameters.AddWithValue("queue_id", queueId);
            command.Parameters.AddWithValue("checkpoint", checkpoint);
            command.Parameters.AddWithValue("batch", RetentionBatchSize);
            bind(command);
            var rows = await NonQueryAsync(command, cancellationToken);
            deleted += rows;
            if (rows < RetentionBatchSize)
            {
                return deleted;
            }
        }
    }

    private async Task<int> NonQueryAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        try
        {
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (NpgsqlException exception) when (ForgetBrokenConnections(exception))
        {
            throw;
        }
    }

    private async Task<object?> ScalarAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        try
        {
            return await command.ExecuteScalarAsync(cancellationToken);
        }
        catch (NpgsqlException exception) when (ForgetBrokenConnections(exception))
        {
            throw;
        }
    }

    private async Task<IReadOnlyList<StoredStreamEvent>> ReadEventsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        try
        {
            return await ReadAllAsync(command, cancellationToken);
        }
        catch (NpgsqlException exception) when (ForgetBrokenConnections(exception))
        {
            throw;
        }
    }

    private static async Task<IReadOnlyList<StoredStreamEvent>> ReadAllAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var events = new List<StoredStreamEvent>();
        while (await reader.ReadAsync(cancellationToken))
        {
            events.Add(new StoredStreamEvent(
                reader.GetInt64(0),
                StreamId.Create(reader.GetString(1), reader.GetString(2)),
                reader.GetInt64(3),
                reader.GetGuid(4),
                reader.GetFieldValue<DateTimeOffset>(5),
                reader.IsDBNull(6) ? null : reader.GetString(6),
                reader.IsDBNull(7) ? null : reader.GetString(7),
                reader.GetFieldValue<byte[]>(8),
                reader.IsDBNull(9) ? null : reader.GetFieldValue<byte[]>(9)));
        }

        return events;
    }

    /// <summary>
    /// An exception filter that never catches: after a network-level failure (PostgreSQL restarted, connection
    /// cut) it empties the pool, so the next command opens a fresh connection instead of a dead pooled one.
    /// </summary>
    private bool ForgetBrokenConnections(NpgsqlException exception)
    {
        if (exception is not PostgresException)
        {
            dataSource.Clear();
        }

        return false;
    }

    private static string Namespace(StreamId streamId) => streamId.GetNamespace() ?? string.Empty;

    public ValueTask DisposeAsync() => dataSource.DisposeAsync();
}
