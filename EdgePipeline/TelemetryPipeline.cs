using System.Diagnostics;
using System.Threading.Channels;
using CloudEdge.EdgePipeline.Inference;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Outbox;
using CloudEdge.EdgePipeline.Storage;
using CloudEdge.EdgePipeline.Windows;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudEdge.EdgePipeline;

/// <summary>What became of a reading handed to the pipeline.</summary>
public enum AcceptResult
{
    /// <summary>Journaled (committed) or, for QoS 0, queued.</summary>
    Accepted,
    /// <summary>Seen before: acknowledged, not processed again.</summary>
    Duplicate,
    /// <summary>The ingest queue stayed full: refused (0x97), counted.</summary>
    Full,
    /// <summary>The pipeline is stopping or its journal failed: refused, counted.</summary>
    Unavailable,
}

/// <summary>
/// The edge pipeline's one loop: readings arrive through a bounded channel, are journaled in group commits
/// (the sensor's PUBACK waits for the commit), scored in batches across devices, folded into per-device
/// tumbling windows; alerts and closed windows' summaries go into the outbox in the same transaction that
/// prunes the journal. One writer, so no locks on the hot path.
/// </summary>
public sealed class TelemetryPipeline : IHostedService, IAsyncDisposable
{
    /// <summary>The Silo refuses a summary with more links (docs/uplink.md, DeviceRules.MaxLinks).</summary>
    private const int MaxLinks = 32;

    /// <summary>
    /// Journal rows stay at least this long after their commit, whatever their window: they are what recognises a
    /// QoS 1 resend after a restart. A sensor resends what it has no PUBACK for, and a PUBACK can be lost with the
    /// killed process moments after the commit (so its reading's window may already be summarised).
    /// </summary>
    private static readonly TimeSpan RedeliveryHorizon = TimeSpan.FromSeconds(30);

    private readonly EdgePipelineOptions _options;
    private readonly OutboxStore _outbox;
    private readonly ModelSlot _models;
    private readonly EdgeTelemetry _telemetry;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<Work> _channel;
    private readonly Dictionary<(string Device, SensorKind Kind), KindState> _states = [];
    private readonly DuplicateFilter _duplicates;
    private readonly int _historyCapacity;
    private SqliteConnection? _connection;
    private ITimer? _ticker;
    private Task? _loop;
    private long _droppedReadings;
    private long _nextJournalId = 1;
    private long _prunedBelow;
    private bool _needsRecovery;
    private readonly Queue<(long FirstId, DateTimeOffset At)> _recentBatches = new();
    private long _pendingDrops;
    private DateTimeOffset _lastAgeCheck = DateTimeOffset.MinValue;
    private float[] _rows = new float[FeatureSpec.FeatureCount * 64];
    private float[] _scores = new float[64];

    internal TelemetryPipeline(EdgePipelineOptions options, OutboxStore outbox, ModelSlot models, EdgeTelemetry telemetry, TimeProvider time, ILogger<TelemetryPipeline>? logger = null)
    {
        if (string.IsNullOrWhiteSpace(options.GatewayId)) throw new ArgumentException("EdgeAgent:GatewayId is required.");
        if (options.WindowLength <= TimeSpan.Zero) throw new ArgumentException("EdgeAgent:WindowLength must be positive.");
        _options = options;
        _outbox = outbox;
        _models = models;
        _telemetry = telemetry;
        _time = time;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _duplicates = new DuplicateFilter(options.DuplicateMemory);
        _historyCapacity = Math.Max(64, models.Current.Features.Window);
        _channel = Channel.CreateBounded<Work>(new BoundedChannelOptions(options.IngestCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>Readings lost at ingest so far (QoS 0 with a full queue, or refused after the wait).</summary>
    public long DroppedReadings => Interlocked.Read(ref _droppedReadings);

    /// <summary>Open windows, as committed (a closed window counts until its summary's transaction commits).</summary>
    internal int OpenWindows => Volatile.Read(ref _openWindows);

    private int _openWindows;
    private int _closedUncommitted;

    /// <summary>
    /// Hands a reading to the pipeline. <paramref name="waitForJournal"/> (QoS 1/2): completes after the reading is
    /// committed to the journal, so the acknowledgement never runs ahead of durability; a full queue holds the
    /// caller up to <see cref="EdgePipelineOptions.IngestFullWait"/>. QoS 0: never waits, dropped when full.
    /// </summary>
    public async ValueTask<AcceptResult> AcceptAsync(SensorReading reading, bool waitForJournal, CancellationToken cancellationToken)
    {
        var work = new Work(reading with { ReceivedAt = _time.GetUtcNow() }, waitForJournal);
        if (!_channel.Writer.TryWrite(work))
        {
            if (!waitForJournal) return Dropped("ingest_full");
            using var timeout = new CancellationTokenSource(_options.IngestFullWait, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
            try
            {
                await _channel.Writer.WriteAsync(work, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return Dropped("ingest_full");
            }
            catch (ChannelClosedException)
            {
                return Dropped("stopping");
            }
        }
        if (work.Completion is null) return AcceptResult.Accepted;
        return await work.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _connection = EdgeDatabase.Open(_options.DataDirectory);
        Recover();
        _ticker = _time.CreateTimer(_ => _channel.Writer.TryWrite(Work.Tick), null, _options.TickInterval, _options.TickInterval);
        _loop = Task.Run(RunAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <summary>Stops taking readings, journals and processes what was queued. Open windows stay in the journal.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _channel.Writer.TryComplete();
        _ticker?.Dispose();
        if (_loop is not null) await _loop.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _connection?.Dispose();
        _connection = null;
    }

    private AcceptResult Dropped(string reason)
    {
        Interlocked.Increment(ref _droppedReadings);
        // Reported upstream by the loop in a drops item (a refusal while stopping is not: the loop is gone, and v5 publishers resend).
        if (reason != "stopping") Interlocked.Increment(ref _pendingDrops);
        _telemetry.ReadingsDropped.Add(1, new KeyValuePair<string, object?>("reason", reason));
        return reason == "stopping" ? AcceptResult.Unavailable : AcceptResult.Full;
    }

    private async Task RunAsync()
    {
        var batch = new List<Work>(_options.MaxBatch);
        var reader = _channel.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < _options.MaxBatch && reader.TryRead(out var work))
            {
                if (work.Reading is not null) batch.Add(work);
            }
            try
            {
                _models.DisposeRetired();
                RunBatch(batch, _time.GetUtcNow());
            }
            catch (Exception e)
            {
                // The journal could not commit (disk full, I/O error): the sensors are refused, not acknowledged.
                _logger.LogError(e, "Edge pipeline batch of {Count} readings failed", batch.Count);
                foreach (var work in batch) work.Completion?.TrySetResult(AcceptResult.Unavailable);
            }
        }
    }

    /// <summary>
    /// One transaction and so one fsync per batch: the readings are journaled, then (under a savepoint) scored,
    /// windowed, their alerts and the due summaries written; the sensors are acknowledged after the commit. If the
    /// processing part fails, only it is rolled back: the readings are journaled and acknowledged, and the
    /// in-memory state is rebuilt from the journal (which processes them, alerts included) before the next batch.
    /// </summary>
    private void RunBatch(List<Work> batch, DateTimeOffset now)
    {
        var entries = new List<JournaledReading>(batch.Count);
        var outcome = new AcceptResult[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            var reading = batch[i].Reading!;
            if (_duplicates.TryAdd(reading))
            {
                entries.Add(new JournaledReading(reading, WindowStart(reading.ReceivedAt)));
                outcome[i] = AcceptResult.Accepted;
            }
            else
            {
                outcome[i] = AcceptResult.Duplicate;
                _telemetry.ReadingsDuplicate.Add(1);
            }
        }
        if (_needsRecovery) TryRecover();
        var upkeep = _needsRecovery ? default : UpkeepDue(now);
        if (entries.Count > 0 || upkeep.Any)
        {
            var connection = _connection!;
            var firstId = _nextJournalId;
            try
            {
                using var transaction = connection.BeginTransaction();
                if (entries.Count > 0)
                {
                    ReadingJournal.Append(connection, transaction, entries, firstId);
                    _nextJournalId = firstId + entries.Count;
                    _recentBatches.Enqueue((firstId, now));
                }
                if (!_needsRecovery) ProcessUnderSavepoint(connection, transaction, entries, upkeep, now);
                Commit(transaction);
            }
            catch
            {
                // Refused: a resend must not be taken for a duplicate, the ids are free again, and the in-memory
                // windows may hold readings the journal does not: rebuild them from the journal first.
                _nextJournalId = firstId;
                foreach (var entry in entries) _duplicates.Forget(entry.Reading);
                _needsRecovery = true;
                throw;
            }
            if (!_needsRecovery)
            {
                if (upkeep.Drops > 0) Interlocked.Add(ref _pendingDrops, -upkeep.Drops);
                if (upkeep.CheckAge) _lastAgeCheck = now;
            }
            _outbox.NotifyNewItems();
        }
        // Durable: now the sensors may be acknowledged.
        for (var i = 0; i < batch.Count; i++) batch[i].Completion?.TrySetResult(outcome[i]);
        _telemetry.ReadingsAccepted.Add(entries.Count);
    }

    private void ProcessUnderSavepoint(SqliteConnection connection, SqliteTransaction transaction, List<JournaledReading> entries, Upkeep upkeep, DateTimeOffset now)
    {
        const string savepoint = "processing";
        transaction.Save(savepoint);
        try
        {
            if (entries.Count > 0)
            {
                Process(connection, transaction, entries, emitAlerts: true, closedWindows: null);
                EdgeDatabase.SetState(connection, transaction, ReadingJournal.ProcessedKey, entries[^1].Id);
            }
            Maintain(connection, transaction, now, upkeep);
            transaction.Release(savepoint);
        }
        catch (Exception e) when (entries.Count > 0)
        {
            transaction.Rollback(savepoint);
            _closedUncommitted = 0;
            _needsRecovery = true;
            _logger.LogError(e, "Processing {Count} journaled readings failed; they stay journaled and the pipeline state is rebuilt from the journal", entries.Count);
        }
    }

    /// <summary>Scores the readings in order (features from each device's history), folds them into windows, writes alerts.
    /// Readings of a window in <paramref name="closedWindows"/> (already summarised; a restart) only feed the history.</summary>
    private void Process(SqliteConnection connection, SqliteTransaction transaction, List<JournaledReading> entries, bool emitAlerts, HashSet<string>? closedWindows)
    {
        var model = _models.Current;
        const int f = FeatureSpec.FeatureCount;
        var n = entries.Count;
        if (_scores.Length < n)
        {
            _scores = new float[Math.Max(n, _scores.Length * 2)];
            _rows = new float[_scores.Length * f];
        }
        var states = new KindState[n];
        for (var i = 0; i < n; i++)
        {
            var reading = entries[i].Reading;
            var state = State(reading.DeviceId, reading.Kind);
            states[i] = state;
            model.Features.Compute(reading.Kind, reading.Value, state.History, _rows.AsSpan(i * f, f));
            state.History.Add(reading.Value);
        }
        using (var batchSpan = EdgeTelemetry.Source.StartActivity("edge.inference.batch"))
        {
            batchSpan?.SetTag("cloudedge.model.version", model.Version);
            batchSpan?.SetTag("cloudedge.inference.batch_size", n);
            model.Score(_rows, n, _scores);
        }
        _telemetry.InferenceBatch.Record(n);

        var now = _time.GetUtcNow();
        for (var i = 0; i < n; i++)
        {
            var entry = entries[i];
            var reading = entry.Reading;
            double score = _scores[i];
            var anomalous = score >= model.Threshold;
            if (EdgeTelemetry.Source.HasListeners())
            {
                using var span = EdgeTelemetry.Source.StartActivity("edge.inference", ActivityKind.Internal, ParentOf(reading));
                span?.SetTag("cloudedge.device.id", reading.DeviceId);
                span?.SetTag("cloudedge.telemetry.seq", reading.Seq);
                span?.SetTag("cloudedge.anomaly.score", score);
                span?.SetTag("cloudedge.anomaly.detected", anomalous);
            }
            if (closedWindows is not null && closedWindows.Contains(WindowAccumulator.KeyOf(reading.DeviceId, reading.Kind, entry.WindowStart))) continue;
            var state = states[i];
            if (state.Window is { } open && open.Start != entry.WindowStart)
            {
                // The device moved on to a later window before the tick closed this one.
                CloseWindow(connection, transaction, state, now);
            }
            if (state.Window is null)
            {
                state.Window = OpenWindow(reading, entry.WindowStart);
                state.FirstId = entry.Id;
            }
            state.LastId = entry.Id;
            state.Window.Add(reading.Value, score, anomalous, model.Version, reading.TraceParent);
            if (anomalous && emitAlerts)
            {
                var traceParent = reading.TraceParent ?? NewTraceParent();
                _outbox.InsertAlert(connection, transaction, reading, score, model.Threshold, model.Version, traceParent, now);
                _telemetry.Alerts.Add(1, new KeyValuePair<string, object?>("kind", SensorKinds.Name(reading.Kind)));
                _logger.LogWarning("Anomaly on {DeviceId} {Kind}: value {Value} scored {Score} (threshold {Threshold}, model {Model}, trace {TraceParent})",
                    reading.DeviceId, SensorKinds.Name(reading.Kind), reading.Value, score, model.Threshold, model.Version, traceParent);
            }
        }
    }

    /// <summary>What the periodic part of a batch's transaction has to do.</summary>
    private readonly record struct Upkeep(bool CloseDue, long Drops, bool CheckAge)
    {
        public bool Any => CloseDue || Drops > 0 || CheckAge;
    }

    private Upkeep UpkeepDue(DateTimeOffset now)
    {
        var due = false;
        foreach (var state in _states.Values)
        {
            if (state.Window is { } window && window.End <= now)
            {
                due = true;
                break;
            }
        }
        return new Upkeep(due, Interlocked.Read(ref _pendingDrops), now - _lastAgeCheck >= TimeSpan.FromMinutes(1));
    }

    /// <summary>Closes windows whose end has passed, reports readings dropped at ingest, applies the outbox bounds, prunes the journal.</summary>
    private void Maintain(SqliteConnection connection, SqliteTransaction transaction, DateTimeOffset now, Upkeep upkeep)
    {
        if (upkeep.CloseDue)
        {
            foreach (var state in _states.Values)
            {
                if (state.Window is { } window && window.End <= now) CloseWindow(connection, transaction, state, now);
            }
        }
        if (upkeep.Drops > 0) _outbox.ReportDrops(connection, transaction, new DropCounts(0, 0, upkeep.Drops), "ingest_full", now);
        _outbox.Enforce(connection, transaction, now, upkeep.CheckAge);
        if (_closedUncommitted > 0) PruneJournal(connection, transaction, now);
    }

    /// <summary>
    /// Deletes the journal's prefix below the oldest reading of any open window (all of it is summarised) and
    /// older than <see cref="RedeliveryHorizon"/>.
    /// </summary>
    private void PruneJournal(SqliteConnection connection, SqliteTransaction transaction, DateTimeOffset now)
    {
        while (_recentBatches.Count > 0 && _recentBatches.Peek().At < now - RedeliveryHorizon) _recentBatches.Dequeue();
        var boundary = _recentBatches.Count > 0 ? _recentBatches.Peek().FirstId : _nextJournalId;
        foreach (var state in _states.Values)
        {
            if (state.Window is not null && state.FirstId < boundary) boundary = state.FirstId;
        }
        if (boundary <= _prunedBelow) return;
        ReadingJournal.PruneBelow(connection, transaction, boundary);
        _prunedBelow = boundary;
    }

    private void CloseWindow(SqliteConnection connection, SqliteTransaction transaction, KindState state, DateTimeOffset now)
    {
        var window = state.Window!;
        state.Window = null;
        _closedUncommitted++;
        if (!ReadingJournal.MarkClosed(connection, transaction, window.Key, state.LastId)) return;
        // A summary is its own trace, linked to (a bounded number of) the readings it summarises.
        var links = window.Links.Select(l => ActivityContext.TryParse(l, null, out var c) ? new ActivityLink(c) : default)
            .Where(l => l.Context != default).ToList();
        using var span = EdgeTelemetry.Source.StartActivity("edge.window.summary", ActivityKind.Internal, new ActivityContext(), links: links);
        span?.SetTag("cloudedge.device.id", window.DeviceId);
        span?.SetTag("cloudedge.telemetry.kind", SensorKinds.Name(window.Kind));
        span?.SetTag("cloudedge.window.count", window.Count);
        var traceParent = span?.Id ?? NewTraceParent();
        if (_outbox.InsertSummary(connection, transaction, window, traceParent, now))
        {
            _telemetry.Summaries.Add(1);
        }
    }

    /// <summary>A processing failure left the in-memory state behind the journal: rebuild it (a failure here is retried next batch).</summary>
    private void TryRecover()
    {
        try
        {
            Recover();
            _needsRecovery = false;
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Rebuilding the pipeline state from the journal failed; readings are journaled and acknowledged, processing waits");
        }
    }

    /// <summary>Rebuilds open windows and histories from the journal; readings never processed are processed now (alerts included).</summary>
    private void Recover()
    {
        var connection = _connection!;
        _states.Clear();
        _closedUncommitted = 0;
        Volatile.Write(ref _openWindows, 0);
        _nextJournalId = ReadingJournal.NextId(connection);
        _prunedBelow = 0;
        _recentBatches.Clear();
        var all = ReadingJournal.ReadAll(connection);
        if (all.Count == 0) return;
        // What was journaled before the restart stays for the horizon too: the sensors resend right after it.
        var now = _time.GetUtcNow();
        _recentBatches.Enqueue((all[0].Id, now));
        var processed = EdgeDatabase.GetState(connection, ReadingJournal.ProcessedKey);
        var closed = ReadingJournal.ClosedWindows(connection);
        foreach (var entry in all) _duplicates.TryAdd(entry.Reading);
        var done = all.Where(e => e.Id <= processed).ToList();
        var pending = all.Where(e => e.Id > processed).ToList();
        using var transaction = connection.BeginTransaction();
        if (done.Count > 0) Process(connection, transaction, done, emitAlerts: false, closed);
        if (pending.Count > 0)
        {
            Process(connection, transaction, pending, emitAlerts: true, closedWindows: null);
            EdgeDatabase.SetState(connection, transaction, ReadingJournal.ProcessedKey, pending[^1].Id);
        }
        _outbox.Enforce(connection, transaction, now, checkAge: false);
        if (_closedUncommitted > 0) PruneJournal(connection, transaction, now);
        Commit(transaction);
        _logger.LogInformation("Recovered {Count} journaled readings ({Pending} not yet processed) into {Windows} open windows", all.Count, pending.Count, OpenWindows);
    }

    private void Commit(SqliteTransaction transaction)
    {
        transaction.Commit();
        Interlocked.Add(ref _openWindows, -_closedUncommitted);
        _closedUncommitted = 0;
    }

    private KindState State(string device, SensorKind kind)
    {
        if (!_states.TryGetValue((device, kind), out var state))
        {
            state = new KindState(new ReadingHistory(_historyCapacity));
            _states[(device, kind)] = state;
        }
        return state;
    }

    private WindowAccumulator OpenWindow(SensorReading reading, DateTimeOffset start)
    {
        Interlocked.Increment(ref _openWindows);
        return new WindowAccumulator(reading.DeviceId, reading.Kind, start, start + _options.WindowLength, Math.Min(_options.MaxSummaryLinks, MaxLinks));
    }

    private DateTimeOffset WindowStart(DateTimeOffset received)
    {
        var ticks = received.UtcTicks;
        return new DateTimeOffset(ticks - ticks % _options.WindowLength.Ticks, TimeSpan.Zero);
    }

    private static ActivityContext ParentOf(SensorReading reading) =>
        reading.TraceParent is { } tp && ActivityContext.TryParse(tp, reading.TraceState, isRemote: true, out var context) ? context : default;

    internal static string NewTraceParent() => $"00-{ActivityTraceId.CreateRandom().ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-00";

    private sealed class KindState(ReadingHistory history)
    {
        public ReadingHistory History { get; } = history;
        public WindowAccumulator? Window { get; set; }
        /// <summary>Journal ids of the open window's first and last readings (pruning, and the closed-window mark).</summary>
        public long FirstId { get; set; }
        public long LastId { get; set; }
    }

    private sealed class Work
    {
        public static readonly Work Tick = new();

        private Work()
        {
        }

        public Work(SensorReading reading, bool waitForJournal)
        {
            Reading = reading;
            if (waitForJournal) Completion = new TaskCompletionSource<AcceptResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        public SensorReading? Reading { get; }
        public TaskCompletionSource<AcceptResult>? Completion { get; }
    }
}
