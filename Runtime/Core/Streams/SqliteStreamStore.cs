using System.Threading.Channels;
using Microsoft.Data.Sqlite;

namespace CloudEdge.Runtime.Streams;

/// <summary>
/// Events, subscriptions with their cursors, and dead letters in an embedded SQLite database (WAL).
/// One connection serves the provider, behind a lock. Appends go through one writer that commits
/// whatever is queued as one transaction (group commit): sequence numbers follow append order, and a
/// batch is never split.
/// </summary>
internal sealed class SqliteStreamStore : IStreamStore
{
    private readonly SemaphoreSlim gate = new(1, 1);
    private const int MaxEventsPerCommit = 4096;
    private readonly SqliteConnection connection;
    private readonly Channel<PendingAppend> appends = Channel.CreateUnbounded<PendingAppend>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task writer;
    private bool disposed;

    public SqliteStreamStore(string connectionString)
    {
        connection = new SqliteConnection(connectionString);
        connection.Open();
        Execute("""
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            PRAGMA busy_timeout = 30000;
            CREATE TABLE IF NOT EXISTS stream_events (
                stream      TEXT    NOT NULL,
                seq         INTEGER NOT NULL,
                event_id    TEXT    NOT NULL,
                ts_ms       INTEGER NOT NULL,
                traceparent TEXT,
                tracestate  TEXT,
                payload     TEXT    NOT NULL,
                PRIMARY KEY (stream, seq)
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS stream_events_ts ON stream_events (ts_ms);
            CREATE TABLE IF NOT EXISTS stream_heads (
                stream   TEXT    NOT NULL PRIMARY KEY,
                last_seq INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS stream_subscriptions (
                id        TEXT    NOT NULL PRIMARY KEY,
                stream    TEXT    NOT NULL,
                grain_id  TEXT,
                item_type TEXT    NOT NULL,
                implicit  INTEGER NOT NULL,
                next_seq  INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS stream_dead_letters (
                id            INTEGER PRIMARY KEY AUTOINCREMENT,
                stream        TEXT    NOT NULL,
                event_id      TEXT    NOT NULL,
                seq           INTEGER NOT NULL,
                subscription  TEXT    NOT NULL,
                subscriber    TEXT    NOT NULL,
                attempts      INTEGER NOT NULL,
                error         TEXT    NOT NULL,
                at_ms         INTEGER NOT NULL,
                payload       TEXT    NOT NULL
            );
            """);
        writer = Task.Run(WriteAppendsAsync);
    }

    public Task<long[]> AppendAsync(StreamId streamId, IReadOnlyList<NewStreamEvent> events, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var append = new PendingAppend(streamId.ToString(), events);
        if (!appends.Writer.TryWrite(append))
        {
            throw new ObjectDisposedException(nameof(SqliteStreamStore), "The stream store is closed.");
        }

        // Once queued, the append happens whether or not the caller still waits for it.
        return append.Completion.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Group commit: appends queued while a transaction runs go into the next one together, so concurrent
    /// producers share commits. Queue order is append order, so sequence numbers follow it per stream.
    /// </summary>
    private async Task WriteAppendsAsync()
    {
        var reader = appends.Reader;
        var group = new List<PendingAppend>();
        while (await reader.WaitToReadAsync())
        {
            group.Clear();
            var eventCount = 0;
            while (eventCount < MaxEventsPerCommit && reader.TryRead(out var next))
            {
                group.Add(next);
                eventCount += next.Events.Count;
            }

            await gate.WaitAsync();
            try
            {
                CommitGroup(group);
                foreach (var append in group)
                {
                    append.Completion.TrySetResult(append.Sequences);
                }
            }
            catch (Exception exception)
            {
                foreach (var append in group)
                {
                    append.Completion.TrySetException(exception);
                }
            }
            finally
            {
                gate.Release();
            }
        }
    }

    private void CommitGroup(List<PendingAppend> group)
    {
        using var transaction = connection.BeginTransaction();
        var heads = new Dictionary<string, long>(StringComparer.Ordinal);
        using var head = connection.CreateCommand();
        head.Transaction = transaction;
        head.CommandText = "SELECT last_seq FROM stream_heads WHERE stream = $stream";
        var headStream = head.Parameters.Add("$stream", SqliteType.Text);
        using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = "INSERT INTO stream_events (stream, seq, event_id, ts_ms, traceparent, tracestate, payload) VALUES ($stream, $seq, $id, $ts, $tp, $ts2, $payload)";
        var pStream = insert.Parameters.Add("$stream", SqliteType.Text);
        var pSeq = insert.Parameters.Add("$seq", SqliteType.Integer);
        var pId = insert.Parameters.Add("$id", SqliteType.Text);
        var pTs = insert.Parameters.Add("$ts", SqliteType.Integer);
        var pTp = insert.Parameters.Add("$tp", SqliteType.Text);
        var pState = insert.Parameters.Add("$ts2", SqliteType.Text);
        var pPayload = insert.Parameters.Add("$payload", SqliteType.Text);
        insert.Prepare();
        foreach (var append in group)
        {
            if (!heads.TryGetValue(append.Stream, out var last))
            {
                headStream.Value = append.Stream;
                last = head.ExecuteScalar() is long value ? value : 0;
            }

            pStream.Value = append.Stream;
            var sequences = new long[append.Events.Count];
            for (var i = 0; i < sequences.Length; i++)
            {
                var e = append.Events[i];
                sequences[i] = ++last;
                pSeq.Value = last;
                pId.Value = e.EventId.ToString("N");
                pTs.Value = e.Timestamp.ToUnixTimeMilliseconds();
                pTp.Value = (object?)e.TraceParent ?? DBNull.Value;
                pState.Value = (object?)e.TraceState ?? DBNull.Value;
                pPayload.Value = e.Payload;
                insert.ExecuteNonQuery();
            }

            append.Sequences = sequences;
            heads[append.Stream] = last;
        }

        using var update = connection.CreateCommand();
        update.Transaction = transaction;
        update.CommandText = "INSERT INTO stream_heads (stream, last_seq) VALUES ($stream, $last) ON CONFLICT (stream) DO UPDATE SET last_seq = excluded.last_seq";
        var uStream = update.Parameters.Add("$stream", SqliteType.Text);
        var uLast = update.Parameters.Add("$last", SqliteType.Integer);
        foreach (var (stream, last) in heads)
        {
            uStream.Value = stream;
            uLast.Value = last;
            update.ExecuteNonQuery();
        }

        transaction.Commit();
    }

    /// <summary>Runs <paramref name="work"/> on the provider's one connection, one caller at a time.</summary>
    private async Task<T> LockedAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        await gate.WaitAsync(cancellationToken);
        try
        {
            return work();
        }
        finally
        {
            gate.Release();
        }
    }

    private Task LockedAsync(Action work, CancellationToken cancellationToken) =>
        LockedAsync(() =>
        {
            work();
            return true;
        }, cancellationToken);

    public async Task<IReadOnlyList<StoredStreamEvent>> ReadAsync(StreamId streamId, long fromSequence, int limit, CancellationToken cancellationToken)
    {
        return await LockedAsync(() =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT seq, event_id, ts_ms, traceparent, tracestate, payload FROM stream_events WHERE stream = $stream AND seq >= $from ORDER BY seq LIMIT $limit";
            command.Parameters.AddWithValue("$stream", streamId.ToString());
            command.Parameters.AddWithValue("$from", fromSequence);
            command.Parameters.AddWithValue("$limit", limit);
            using var reader = command.ExecuteReader();
            var events = new List<StoredStreamEvent>();
            while (reader.Read())
            {
                events.Add(new StoredStreamEvent(
                    reader.GetInt64(0),
                    Guid.ParseExact(reader.GetString(1), "N"),
                    DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2)),
                    reader.IsDBNull(3) ? null : reader.GetString(3),
                    reader.IsDBNull(4) ? null : reader.GetString(4),
                    reader.GetString(5)));
            }

            return events;
        }, cancellationToken);
    }

    public async Task<long> GetLastSequenceAsync(StreamId streamId, CancellationToken cancellationToken)
    {
        return await LockedAsync(() =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT last_seq FROM stream_heads WHERE stream = $stream";
            command.Parameters.AddWithValue("$stream", streamId.ToString());
            return command.ExecuteScalar() is long value ? value : 0;
        }, cancellationToken);
    }

    public async Task<SubscriptionRecord> AddSubscriptionAsync(SubscriptionRecord subscription, CancellationToken cancellationToken)
    {
        return await LockedAsync(() =>
        {
            using (var insert = connection.CreateCommand())
            {
                insert.CommandText = "INSERT INTO stream_subscriptions (id, stream, grain_id, item_type, implicit, next_seq) VALUES ($id, $stream, $grain, $type, $implicit, $next) ON CONFLICT (id) DO NOTHING";
                insert.Parameters.AddWithValue("$id", subscription.Id.ToString("N"));
                insert.Parameters.AddWithValue("$stream", subscription.StreamId.ToString());
                insert.Parameters.AddWithValue("$grain", (object?)subscription.Grain?.ToString() ?? DBNull.Value);
                insert.Parameters.AddWithValue("$type", subscription.ItemType);
                insert.Parameters.AddWithValue("$implicit", subscription.Implicit ? 1 : 0);
                insert.Parameters.AddWithValue("$next", subscription.NextSequence);
                insert.ExecuteNonQuery();
            }

            using var select = connection.CreateCommand();
            select.CommandText = "SELECT id, stream, grain_id, item_type, implicit, next_seq FROM stream_subscriptions WHERE id = $id";
            select.Parameters.AddWithValue("$id", subscription.Id.ToString("N"));
            using var reader = select.ExecuteReader();
            reader.Read();
            return ReadSubscription(reader);
        }, cancellationToken);
    }

    public async Task RemoveSubscriptionAsync(Guid subscriptionId, CancellationToken cancellationToken)
    {
        await LockedAsync(() =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = "DELETE FROM stream_subscriptions WHERE id = $id";
            command.Parameters.AddWithValue("$id", subscriptionId.ToString("N"));
            command.ExecuteNonQuery();
        }, cancellationToken);
    }

    public async Task<IReadOnlyList<SubscriptionRecord>> LoadSubscriptionsAsync(CancellationToken cancellationToken)
    {
        return await LockedAsync(() =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT id, stream, grain_id, item_type, implicit, next_seq FROM stream_subscriptions";
            using var reader = command.ExecuteReader();
            var records = new List<SubscriptionRecord>();
            while (reader.Read())
            {
                records.Add(ReadSubscription(reader));
            }

            return records;
        }, cancellationToken);
    }

    public async Task SaveCursorAsync(Guid subscriptionId, long nextSequence, CancellationToken cancellationToken)
    {
        await LockedAsync(() =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = "UPDATE stream_subscriptions SET next_seq = $next WHERE id = $id";
            command.Parameters.AddWithValue("$id", subscriptionId.ToString("N"));
            command.Parameters.AddWithValue("$next", nextSequence);
            command.ExecuteNonQuery();
        }, cancellationToken);
    }

    public async Task AddDeadLetterAsync(StreamDeadLetter deadLetter, CancellationToken cancellationToken)
    {
        await LockedAsync(() =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = """
                INSERT INTO stream_dead_letters (stream, event_id, seq, subscription, subscriber, attempts, error, at_ms, payload)
                VALUES ($stream, $event, $seq, $subscription, $subscriber, $attempts, $error, $at, $payload)
                """;
            command.Parameters.AddWithValue("$stream", deadLetter.StreamId.ToString());
            command.Parameters.AddWithValue("$event", deadLetter.EventId.ToString("N"));
            command.Parameters.AddWithValue("$seq", deadLetter.Token.SequenceNumber);
            command.Parameters.AddWithValue("$subscription", deadLetter.SubscriptionId.ToString("N"));
            command.Parameters.AddWithValue("$subscriber", deadLetter.Subscriber);
            command.Parameters.AddWithValue("$attempts", deadLetter.Attempts);
            command.Parameters.AddWithValue("$error", deadLetter.Error);
            command.Parameters.AddWithValue("$at", deadLetter.DeadLetteredAt.ToUnixTimeMilliseconds());
            command.Parameters.AddWithValue("$payload", deadLetter.Payload);
            command.ExecuteNonQuery();
        }, cancellationToken);
    }

    public async Task<IReadOnlyList<StreamDeadLetter>> GetDeadLettersAsync(StreamId? streamId, int limit, CancellationToken cancellationToken)
    {
        return await LockedAsync(() =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT stream, event_id, seq, subscription, subscriber, attempts, error, at_ms, payload FROM stream_dead_letters " +
                (streamId is null ? string.Empty : "WHERE stream = $stream ") + "ORDER BY id LIMIT $limit";
            if (streamId is { } id)
            {
                command.Parameters.AddWithValue("$stream", id.ToString());
            }

            command.Parameters.AddWithValue("$limit", limit);
            using var reader = command.ExecuteReader();
            var letters = new List<StreamDeadLetter>();
            while (reader.Read())
            {
                letters.Add(new StreamDeadLetter(
                    StreamId.Parse(reader.GetString(0)),
                    Guid.ParseExact(reader.GetString(1), "N"),
                    new StreamSequenceToken(reader.GetInt64(2)),
                    Guid.ParseExact(reader.GetString(3), "N"),
                    reader.GetString(4),
                    reader.GetInt32(5),
                    reader.GetString(6),
                    DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(7)),
                    reader.GetString(8)));
            }

            return letters;
        }, cancellationToken);
    }

    public async Task<long> TrimAsync(DateTimeOffset? olderThan, long? maxPerStream, CancellationToken cancellationToken)
    {
        return await LockedAsync(() =>
        {
            long removed = 0;
            if (olderThan is { } cutoff)
            {
                using var command = connection.CreateCommand();
                command.CommandText = "DELETE FROM stream_events WHERE ts_ms < $cutoff";
                command.Parameters.AddWithValue("$cutoff", cutoff.ToUnixTimeMilliseconds());
                removed += command.ExecuteNonQuery();
            }

            if (maxPerStream is { } max)
            {
                using var command = connection.CreateCommand();
                command.CommandText = "DELETE FROM stream_events WHERE seq <= (SELECT h.last_seq - $max FROM stream_heads h WHERE h.stream = stream_events.stream)";
                command.Parameters.AddWithValue("$max", max);
                removed += command.ExecuteNonQuery();
            }

            return removed;
        }, cancellationToken);
    }

    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        appends.Writer.TryComplete();
        // Let a commit in progress finish before the connection goes.
        writer.Wait(TimeSpan.FromSeconds(30));
        connection.Dispose();
        gate.Dispose();
    }

    private sealed class PendingAppend(string stream, IReadOnlyList<NewStreamEvent> events)
    {
        public string Stream { get; } = stream;

        public IReadOnlyList<NewStreamEvent> Events { get; } = events;

        public long[] Sequences { get; set; } = [];

        public TaskCompletionSource<long[]> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private static SubscriptionRecord ReadSubscription(SqliteDataReader reader) => new(
        Guid.ParseExact(reader.GetString(0), "N"),
        StreamId.Parse(reader.GetString(1)),
        reader.IsDBNull(2) ? null : GrainId.Parse(reader.GetString(2)),
        reader.GetString(3),
        reader.GetInt64(4) != 0,
        reader.GetInt64(5));

    private void Execute(string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
