using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Outbox;
using CloudEdge.EdgePipeline.Tracing;
using CloudEdge.EdgePipeline.Uplink;
using Microsoft.Data.Sqlite;

namespace CloudEdge.EdgePipeline.Windows;

/// <summary>
/// Per-device tumbling windows, one per device and kind: a scored reading opens or joins its window; a window whose
/// end has passed (or whose device moved on to a later one) is closed into a summary in the outbox, in the same
/// transaction that marks it closed in the journal. Windows are aligned to the Unix epoch in gateway time.
/// </summary>
internal sealed class WindowStage(EdgePipelineOptions options, OutboxStore outbox, EdgeTelemetry telemetry)
{
    private readonly Dictionary<(string Device, SensorKind Kind), OpenWindow> _open = [];
    private readonly int _maxLinks = Math.Min(options.MaxSummaryLinks, SiloLimits.MaxLinks);
    private int _openWindows;
    private int _closedUncommitted;

    /// <summary>Open windows, as committed (a closed window counts until its summary's transaction commits).</summary>
    public int OpenWindows => Volatile.Read(ref _openWindows);

    /// <summary>Windows closed in the current transaction: the journal below them may be pruned.</summary>
    public bool AnyClosedUncommitted => _closedUncommitted > 0;

    public DateTimeOffset WindowStart(DateTimeOffset received)
    {
        var ticks = received.UtcTicks;
        return new DateTimeOffset(ticks - ticks % options.WindowLength.Ticks, TimeSpan.Zero);
    }

    /// <summary>Folds a scored reading into its window, closing the device's earlier window first when it moved on.</summary>
    public void Add(SqliteConnection connection, SqliteTransaction transaction, JournaledReading entry, double score, bool anomalous, string modelVersion, DateTimeOffset now)
    {
        var reading = entry.Reading;
        if (!_open.TryGetValue((reading.DeviceId, reading.Kind), out var state))
        {
            state = new OpenWindow();
            _open[(reading.DeviceId, reading.Kind)] = state;
        }
        if (state.Window is { } open && open.Start != entry.WindowStart)
        {
            // The device moved on to a later window before the tick closed this one.
            Close(connection, transaction, state, now);
        }
        if (state.Window is null)
        {
            Interlocked.Increment(ref _openWindows);
            state.Window = new WindowAccumulator(reading.DeviceId, reading.Kind, entry.WindowStart, entry.WindowStart + options.WindowLength, _maxLinks);
            state.FirstId = entry.Id;
        }
        state.LastId = entry.Id;
        state.Window.Add(reading.Value, score, anomalous, modelVersion, reading.TraceParent);
    }

    /// <summary>Whether some window's end has passed.</summary>
    public bool AnyDue(DateTimeOffset now)
    {
        foreach (var state in _open.Values)
        {
            if (state.Window is { } window && window.End <= now) return true;
        }
        return false;
    }

    public void CloseDue(SqliteConnection connection, SqliteTransaction transaction, DateTimeOffset now)
    {
        foreach (var state in _open.Values)
        {
            if (state.Window is { } window && window.End <= now) Close(connection, transaction, state, now);
        }
    }

    /// <summary>The journal id of the oldest reading in an open window, or <paramref name="none"/>.</summary>
    public long OldestOpenReading(long none)
    {
        var oldest = none;
        foreach (var state in _open.Values)
        {
            if (state.Window is not null && state.FirstId < oldest) oldest = state.FirstId;
        }
        return oldest;
    }

    /// <summary>The transaction committed: its closed windows no longer count as open.</summary>
    public void Committed()
    {
        Interlocked.Add(ref _openWindows, -_closedUncommitted);
        _closedUncommitted = 0;
    }

    /// <summary>The processing part was rolled back (recovery rebuilds the windows from the journal).</summary>
    public void RolledBack() => _closedUncommitted = 0;

    public void Reset()
    {
        _open.Clear();
        _closedUncommitted = 0;
        Volatile.Write(ref _openWindows, 0);
    }

    private void Close(SqliteConnection connection, SqliteTransaction transaction, OpenWindow state, DateTimeOffset now)
    {
        var window = state.Window!;
        state.Window = null;
        _closedUncommitted++;
        if (!ReadingJournal.MarkClosed(connection, transaction, window.Key, state.LastId)) return;
        using var span = ReadingTraces.StartSummary(window);
        var traceParent = span?.Id ?? ReadingTraces.NewTraceParent();
        if (outbox.InsertSummary(connection, transaction, window, traceParent, now)) telemetry.Summaries.Add(1);
    }

    private sealed class OpenWindow
    {
        public WindowAccumulator? Window { get; set; }
        /// <summary>Journal ids of the open window's first and last readings (pruning, and the closed-window mark).</summary>
        public long FirstId { get; set; }
        public long LastId { get; set; }
    }
}
