using CloudEdge.EdgePipeline.Inference;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Outbox;
using CloudEdge.EdgePipeline.Pruning;
using CloudEdge.EdgePipeline.Recovery;
using CloudEdge.EdgePipeline.Scoring;
using CloudEdge.EdgePipeline.Storage;
using CloudEdge.EdgePipeline.Tracing;
using CloudEdge.EdgePipeline.Uplink;
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
/// The edge pipeline's one loop. A reading passes through its stages in order: the ingest queue
/// (<see cref="IngestQueue"/>), the journal in a group commit (<see cref="JournalIntake"/>; the sensor's PUBACK waits
/// for the commit), scoring in batches across devices (<see cref="ScoringStage"/>, alerts), its device's tumbling
/// window (<see cref="WindowStage"/>, summaries), and the journal's pruning (<see cref="JournalPruner"/>); after a
/// restart or a failed batch, recovery replays the journal (<see cref="JournalReplay"/>). One writer, so no locks on
/// the hot path; one transaction, and so one fsync, per batch.
/// </summary>
public sealed class TelemetryPipeline : IHostedService, IAsyncDisposable
{
    private readonly EdgePipelineOptions _options;
    private readonly OutboxStore _outbox;
    private readonly UplinkWakeup _wakeup;
    private readonly ModelSlot _models;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IngestQueue _queue;
    private readonly JournalIntake _journal;
    private readonly ScoringStage _scoring;
    private readonly WindowStage _windows;
    private readonly JournalPruner _pruner = new();
    private readonly EdgeTelemetry _telemetry;
    private SqliteConnection? _connection;
    private ITimer? _ticker;
    private Task? _loop;
    private bool _needsRecovery;
    private DateTimeOffset _lastAgeCheck = DateTimeOffset.MinValue;

    internal TelemetryPipeline(EdgePipelineOptions options, OutboxStore outbox, UplinkWakeup wakeup, ModelSlot models, EdgeTelemetry telemetry, TimeProvider time, ILogger<TelemetryPipeline>? logger = null)
    {
        if (string.IsNullOrWhiteSpace(options.GatewayId)) throw new ArgumentException("EdgeAgent:GatewayId is required.");
        if (options.WindowLength <= TimeSpan.Zero) throw new ArgumentException("EdgeAgent:WindowLength must be positive.");
        _options = options;
        _outbox = outbox;
        _wakeup = wakeup;
        _models = models;
        _telemetry = telemetry;
        _time = time;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _queue = new IngestQueue(options.IngestCapacity, options.IngestFullWait, telemetry, time);
        _journal = new JournalIntake(new DuplicateFilter(options.DuplicateMemory), telemetry);
        _scoring = new ScoringStage(outbox, telemetry, Math.Max(64, models.Current.Features.Window), _logger);
        _windows = new WindowStage(options, outbox, telemetry);
    }

    /// <summary>Readings lost at ingest so far (QoS 0 with a full queue, or refused after the wait).</summary>
    public long DroppedReadings => _queue.Dropped;

    /// <summary>Open windows, as committed (a closed window counts until its summary's transaction commits).</summary>
    internal int OpenWindows => _windows.OpenWindows;

    /// <summary>
    /// Hands a reading to the pipeline. <paramref name="waitForJournal"/> (QoS 1/2): completes after the reading is
    /// committed to the journal, so the acknowledgement never runs ahead of durability; a full queue holds the
    /// caller up to <see cref="EdgePipelineOptions.IngestFullWait"/>. QoS 0: never waits, dropped when full.
    /// </summary>
    public ValueTask<AcceptResult> AcceptAsync(SensorReading reading, bool waitForJournal, CancellationToken cancellationToken) =>
        _queue.AcceptAsync(reading, waitForJournal, cancellationToken);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _connection = EdgeDatabase.Open(_options.DataDirectory);
        Recover();
        _ticker = _time.CreateTimer(_ => _queue.Tick(), null, _options.TickInterval, _options.TickInterval);
        _loop = Task.Run(RunAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <summary>Stops taking readings, journals and processes what was queued. Open windows stay in the journal.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Complete();
        _ticker?.Dispose();
        if (_loop is not null) await _loop.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _connection?.Dispose();
        _connection = null;
    }

    private async Task RunAsync()
    {
        var batch = new List<IngestWork>(_options.MaxBatch);
        var reader = _queue.Reader;
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
    private void RunBatch(List<IngestWork> batch, DateTimeOffset now)
    {
        var outcome = new AcceptResult[batch.Count];
        var entries = _journal.Admit(batch, outcome, _windows.WindowStart);
        if (_needsRecovery) TryRecover();
        var upkeep = _needsRecovery ? default : UpkeepDue(now);
        if (entries.Count > 0 || upkeep.Any)
        {
            var connection = _connection!;
            var firstId = _journal.NextId;
            try
            {
                using var transaction = connection.BeginTransaction();
                if (entries.Count > 0)
                {
                    _journal.Append(connection, transaction, entries);
                    _pruner.Journaled(firstId, now);
                }
                if (!_needsRecovery) ProcessUnderSavepoint(connection, transaction, entries, upkeep, now);
                Commit(transaction);
            }
            catch
            {
                // Refused: a resend must not be taken for a duplicate, the ids are free again, and the in-memory
                // windows may hold readings the journal does not: rebuild them from the journal first.
                _journal.Refused(entries, firstId);
                _needsRecovery = true;
                throw;
            }
            if (!_needsRecovery)
            {
                if (upkeep.Drops > 0) _queue.DropsReported(upkeep.Drops);
                if (upkeep.CheckAge) _lastAgeCheck = now;
            }
            _wakeup.ItemsCommitted(alert: _scoring.TakeAlertsWritten());
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
            _windows.RolledBack();
            _needsRecovery = true;
            _logger.LogError(e, "Processing {Count} journaled readings failed; they stay journaled and the pipeline state is rebuilt from the journal", entries.Count);
        }
    }

    /// <summary>Scores the readings in order, folds them into windows, writes alerts. Readings of a window in
    /// <paramref name="closedWindows"/> (already summarised; a restart) only feed the history.</summary>
    private void Process(SqliteConnection connection, SqliteTransaction transaction, List<JournaledReading> entries, bool emitAlerts, HashSet<string>? closedWindows)
    {
        var model = _models.Current;
        var scores = _scoring.Score(model, entries);
        var now = _time.GetUtcNow();
        for (var i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            var reading = entry.Reading;
            double score = scores[i];
            var anomalous = score >= model.Threshold;
            ReadingTraces.Inference(reading, score, anomalous);
            if (closedWindows is not null && closedWindows.Contains(WindowAccumulator.KeyOf(reading.DeviceId, reading.Kind, entry.WindowStart))) continue;
            _windows.Add(connection, transaction, entry, score, anomalous, model.Version, now);
            if (anomalous && emitAlerts) _scoring.Alert(connection, transaction, model, reading, score, now);
        }
    }

    /// <summary>What the periodic part of a batch's transaction has to do.</summary>
    private readonly record struct Upkeep(bool CloseDue, long Drops, bool CheckAge)
    {
        public bool Any => CloseDue || Drops > 0 || CheckAge;
    }

    private Upkeep UpkeepDue(DateTimeOffset now) =>
        new(_windows.AnyDue(now), _queue.PendingDrops, now - _lastAgeCheck >= TimeSpan.FromMinutes(1));

    /// <summary>Closes windows whose end has passed, reports readings dropped at ingest, applies the outbox bounds, prunes the journal.</summary>
    private void Maintain(SqliteConnection connection, SqliteTransaction transaction, DateTimeOffset now, Upkeep upkeep)
    {
        if (upkeep.CloseDue) _windows.CloseDue(connection, transaction, now);
        if (upkeep.Drops > 0) _outbox.ReportDrops(connection, transaction, new DropCounts(0, 0, upkeep.Drops), "ingest_full", now);
        _outbox.Enforce(connection, transaction, now, upkeep.CheckAge);
        if (_windows.AnyClosedUncommitted) _pruner.Prune(connection, transaction, now, _journal.NextId, _windows.OldestOpenReading);
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
        _scoring.Reset();
        _windows.Reset();
        _pruner.Reset();
        _journal.NextId = ReadingJournal.NextId(connection);
        var replay = JournalReplay.Read(connection);
        if (replay.First is not { } first) return;
        // What was journaled before the restart stays for the horizon too: the sensors resend right after it.
        var now = _time.GetUtcNow();
        _pruner.Journaled(first.Id, now);
        _journal.Remember(replay.Processed);
        _journal.Remember(replay.Pending);
        using var transaction = connection.BeginTransaction();
        if (replay.Processed.Count > 0) Process(connection, transaction, replay.Processed, emitAlerts: false, replay.ClosedWindows);
        if (replay.Pending.Count > 0)
        {
            Process(connection, transaction, replay.Pending, emitAlerts: true, closedWindows: null);
            EdgeDatabase.SetState(connection, transaction, ReadingJournal.ProcessedKey, replay.Pending[^1].Id);
        }
        _outbox.Enforce(connection, transaction, now, checkAge: false);
        if (_windows.AnyClosedUncommitted) _pruner.Prune(connection, transaction, now, _journal.NextId, _windows.OldestOpenReading);
        Commit(transaction);
        _logger.LogInformation("Recovered {Count} journaled readings ({Pending} not yet processed) into {Windows} open windows", replay.Count, replay.Pending.Count, OpenWindows);
    }

    private void Commit(SqliteTransaction transaction)
    {
        transaction.Commit();
        _windows.Committed();
    }
}
