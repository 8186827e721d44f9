using CloudEdge.EdgePipeline;
using CloudEdge.EdgePipeline.Inference;
using CloudEdge.EdgePipeline.Outbox;
using CloudEdge.EdgePipeline.Uplink;

namespace CloudEdge.Bench.Edge;

/// <summary>The real pipeline's parts (SQLite in a temp folder, the committed v1 model in ONNX Runtime), composed as AddEdgePipeline does.</summary>
internal sealed class PipelineParts : IAsyncDisposable
{
    public PipelineParts(TimeProvider time, TimeSpan window)
    {
        DataDirectory = Path.Combine(Path.GetTempPath(), "cloudedge-bench-edge-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(DataDirectory);
        Options = new EdgePipelineOptions { GatewayId = "gw-bench", DataDirectory = DataDirectory, WindowLength = window };
        Telemetry = new EdgeTelemetry();
        Outbox = new OutboxStore(DataDirectory, new OutboxOptions(), Telemetry);
        Models = new ModelSlot(AnomalyModel.LoadDirectory(Path.Combine(AppContext.BaseDirectory, "models", "anomaly", "v1")));
        Pipeline = new TelemetryPipeline(Options, Outbox, Wakeup, Models, Telemetry, time);
    }

    public string DataDirectory { get; }
    public EdgePipelineOptions Options { get; }
    public EdgeTelemetry Telemetry { get; }
    public OutboxStore Outbox { get; }
    public UplinkWakeup Wakeup { get; } = new();
    public ModelSlot Models { get; }
    public TelemetryPipeline Pipeline { get; }

    public async ValueTask DisposeAsync()
    {
        await Pipeline.DisposeAsync();
        Models.Dispose();
        Outbox.Dispose();
        Wakeup.Dispose();
        Telemetry.Dispose();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A clock the bench moves by hand; <see cref="Tick"/> fires the pipeline's timers (its window-closing tick).</summary>
internal sealed class SteppedClock(DateTimeOffset start) : TimeProvider
{
    private readonly Lock _gate = new();
    private readonly List<Timer> _timers = [];
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow()
    {
        lock (_gate) return _now;
    }

    public void Advance(TimeSpan by)
    {
        lock (_gate) _now += by;
    }

    public void Tick()
    {
        Timer[] timers;
        lock (_gate) timers = [.. _timers];
        foreach (var t in timers) t.Fire();
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new Timer(this, callback, state);
        lock (_gate) _timers.Add(timer);
        return timer;
    }

    private sealed class Timer(SteppedClock owner, TimerCallback callback, object? state) : ITimer
    {
        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period) => true;

        public void Dispose()
        {
            lock (owner._gate) owner._timers.Remove(this);
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
