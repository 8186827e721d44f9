using System.Diagnostics;
using System.Diagnostics.Metrics;
using CloudEdge.EdgePipeline;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Tracing;

namespace CloudEdge.EdgeAgent.Tests.Inference;

/// <summary>Each model run is timed and sized on the agent's meter, and traced as a batch, while someone listens.</summary>
[Collection(OrtCollection.Name)]
public sealed class InferenceTelemetryTests
{
    [Fact]
    public async Task Model_runs_are_measured_and_traced_while_someone_listens()
    {
        using var dir = new TempDirectory();
        var start = new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);
        await using var harness = await PipelineHarness.StartAsync(dir.Path, new ManualTimeProvider(start));
        var durations = new List<double>();
        var sizes = new List<int>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == harness.Telemetry.Meter && instrument.Name is "cloudedge.edge.inference.duration" or "cloudedge.edge.inference.batch_size") listener.EnableMeasurementEvents(instrument);
        };
        meters.SetMeasurementEventCallback<double>((_, value, _, _) => { lock (durations) durations.Add(value); });
        meters.SetMeasurementEventCallback<int>((_, value, _, _) => { lock (sizes) sizes.Add(value); });
        meters.Start();
        var batches = new List<Activity>();
        using var activities = new ActivityListener
        {
            ShouldListenTo = source => source.Name == EdgeTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { lock (batches) if (a.OperationName == "edge.inference.batch") batches.Add(a); },
        };
        ActivitySource.AddActivityListener(activities);

        var readings = Enumerable.Range(1, 20).Select(i => PipelineHarness.Reading("dev-t", SensorKind.Temperature, 24 + 0.1 * i, i, start.AddSeconds(i), ReadingTraces.NewTraceParent()));
        foreach (var reading in readings) Assert.Equal(AcceptResult.Accepted, await harness.Pipeline.AcceptAsync(reading, waitForJournal: true, CancellationToken.None));

        lock (durations) Assert.True(durations.Count >= 1 && durations.All(d => d > 0), $"{durations.Count} durations");
        lock (sizes) Assert.Equal(20, sizes.Sum());
        lock (batches) Assert.Contains(batches, b => (string?)b.GetTagItem("cloudedge.model.version") == "v1");
    }
}
