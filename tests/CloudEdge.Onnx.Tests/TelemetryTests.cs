using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CloudEdge.Onnx.Tests;

[Collection(OrtCollection.Name)]
public sealed class TelemetryTests(OrtFixture ort)
{
    [Fact]
    public void Runs_are_measured_and_session_opens_are_traced_while_someone_listens()
    {
        var durations = new List<double>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "CloudEdge.Onnx" && instrument.Name == "cloudedge.onnx.run.duration") listener.EnableMeasurementEvents(instrument);
        };
        meters.SetMeasurementEventCallback<double>((_, value, _, _) => { lock (durations) durations.Add(value); });
        meters.Start();

        var opened = new List<Activity>();
        using var activities = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "CloudEdge.Onnx",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { lock (opened) opened.Add(a); },
        };
        ActivitySource.AddActivityListener(activities);

        var path = ModelFiles.ModelPath("v1");
        using var session = ort.Environment.OpenSession(path);
        session.Run([Tensor.Create(new float[16], 2, 8)]);
        using var batch = session.CreateBatchRun(2);
        batch.Run();

        lock (durations) Assert.True(durations.Count >= 2 && durations.All(d => d > 0), $"{durations.Count} measurements");
        lock (opened) Assert.Contains(opened, a => a.OperationName == "onnx.session.open" && (string?)a.GetTagItem("onnx.model.path") == path);
    }
}
