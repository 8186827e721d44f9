using System.Diagnostics;
using System.Text.Json;
using CloudEdge.EdgePipeline.Tracing;
using CloudEdge.EdgePipeline;
using CloudEdge.EdgePipeline.Inference;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Outbox;
using CloudEdge.EdgePipeline.Storage;
using CloudEdge.EdgePipeline.Windows;

namespace CloudEdge.EdgeAgent.Tests;

/// <summary>The pipeline with real SQLite and real ONNX Runtime on a manual clock.</summary>
[Collection(OrtCollection.Name)]
public sealed class PipelineTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 21, 18, 0, 0, TimeSpan.Zero);

    /// <summary>The reference samples: one device per kind, each reading with its own trace context.</summary>
    private static List<(SensorReading Reading, double Score, bool Injected)> Samples(string version, string devicePrefix = "dev")
    {
        var list = new List<(SensorReading, double, bool)>();
        foreach (var series in ModelFiles.Samples(version).GetProperty("series").EnumerateArray())
        {
            SensorKinds.TryParse(series.GetProperty("kind").GetString(), out var kind);
            var values = series.GetProperty("values").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            var scores = series.GetProperty("scores").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            var injected = series.GetProperty("anomalyIndices").EnumerateArray().Select(v => v.GetInt32()).ToHashSet();
            for (var i = 0; i < values.Length; i++)
            {
                var reading = PipelineHarness.Reading($"{devicePrefix}-{kind}", kind, values[i], i + 1, Start.AddSeconds(i), ReadingTraces.NewTraceParent());
                list.Add((reading, scores[i], injected.Contains(i)));
            }
        }
        return list;
    }

    private static async Task FeedAsync(PipelineHarness harness, IEnumerable<SensorReading> readings)
    {
        // Interleave devices as a gateway would see them; each QoS 1 accept waits for its journal commit.
        var tasks = readings.Select(r => harness.Pipeline.AcceptAsync(r, waitForJournal: true, CancellationToken.None).AsTask()).ToList();
        var results = await Task.WhenAll(tasks);
        Assert.All(results, r => Assert.Equal(AcceptResult.Accepted, r));
    }

    private static List<(OutboxItem Item, JsonElement Body)> Items(PipelineHarness harness, string? type = null) =>
        harness.Outbox.ReadBatch(int.MaxValue, long.MaxValue).Where(i => type is null || i.Type == type)
            .Select(i => (i, JsonDocument.Parse(i.Body).RootElement)).ToList();

    [Fact]
    public async Task Anomalies_raise_alerts_at_once_with_the_readings_trace_context()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(Start);
        await using var harness = await PipelineHarness.StartAsync(dir.Path, time);
        var samples = Samples("v1");
        await FeedAsync(harness, samples.Select(s => s.Reading));

        var expected = samples.Where(s => s.Score >= 0.5).ToList();
        Assert.True(expected.Count >= 12);
        await Wait.UntilAsync(() => harness.Outbox.Count("alert") == expected.Count, "alerts");
        var alerts = Items(harness, "alert");
        foreach (var (reading, score, _) in expected)
        {
            var (item, body) = Assert.Single(alerts, a => a.Item.DeviceId == reading.DeviceId && a.Body.GetProperty("readingSeq").GetInt64() == reading.Seq);
            Assert.Equal(reading.TraceParent, item.TraceParent); // exactly the reading's trace context
            Assert.Equal(score, body.GetProperty("score").GetDouble(), 1e-4);
            Assert.Equal(0.5, body.GetProperty("threshold").GetDouble());
            Assert.Equal("v1", body.GetProperty("modelVersion").GetString());
            Assert.Equal(reading.Value, body.GetProperty("value").GetDouble());
            Assert.Equal(SensorKinds.Name(reading.Kind), body.GetProperty("kind").GetString());
        }
        // Every injected anomaly alerted; no summary yet: the windows are open.
        Assert.All(samples.Where(s => s.Injected), s => Assert.Contains(alerts, a => a.Item.DeviceId == s.Reading.DeviceId && a.Body.GetProperty("readingSeq").GetInt64() == s.Reading.Seq));
        Assert.Equal(0, harness.Outbox.Count("summary"));
        // Per device, alerts take seq 1, 2, 3, ... in order and ids are {gateway}:{device}:{seq}.
        foreach (var device in alerts.GroupBy(a => a.Item.DeviceId))
        {
            Assert.Equal(Enumerable.Range(1, device.Count()).Select(i => (long)i), device.Select(a => a.Item.Seq));
            Assert.All(device, a => Assert.Equal($"gw-test:{device.Key}:{a.Item.Seq}", a.Item.ItemId("gw-test")));
        }
    }

    [Fact]
    public async Task Closed_windows_become_summaries_with_exact_statistics_and_bounded_links()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(Start);
        await using var harness = await PipelineHarness.StartAsync(dir.Path, time, window: TimeSpan.FromMinutes(1));
        var samples = Samples("v1");
        var first = samples.Where(s => s.Reading.Seq <= 60).ToList();
        await FeedAsync(harness, first.Select(s => s.Reading));
        await Wait.UntilAsync(() => harness.Pipeline.OpenWindows == 4, "four open windows");

        time.Advance(TimeSpan.FromSeconds(61));
        await Wait.UntilAsync(() => harness.Outbox.Count("summary") == 4, "four summaries");
        await Wait.UntilAsync(() => harness.Pipeline.OpenWindows == 0, "windows closed");
        var alerts = Items(harness, "alert");
        foreach (var (item, body) in Items(harness, "summary"))
        {
            var kind = body.GetProperty("kind").GetString()!;
            var readings = first.Where(s => s.Reading.DeviceId == item.DeviceId).ToList();
            var values = readings.Select(s => s.Reading.Value).ToArray();
            var mean = values.Average();
            Assert.Equal(60, body.GetProperty("count").GetInt64());
            Assert.Equal(values.Min(), body.GetProperty("min").GetDouble());
            Assert.Equal(values.Max(), body.GetProperty("max").GetDouble());
            Assert.Equal(mean, body.GetProperty("mean").GetDouble(), 1e-9);
            Assert.Equal(Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / values.Length), body.GetProperty("stddev").GetDouble(), 1e-9);
            Assert.Equal(readings.Max(s => s.Score), body.GetProperty("maxScore").GetDouble(), 1e-4);
            var deviceAlerts = alerts.Where(a => a.Item.DeviceId == item.DeviceId).ToList();
            Assert.Equal(deviceAlerts.Count, body.GetProperty("anomalyCount").GetInt64());
            Assert.Equal("v1", body.GetProperty("modelVersion").GetString());
            Assert.Equal("2026-11-21T18:00:00.000Z", body.GetProperty("windowStart").GetString());
            Assert.Equal("2026-11-21T18:01:00.000Z", body.GetProperty("windowEnd").GetString());
            var links = body.GetProperty("links").EnumerateArray().Select(l => l.GetString()).ToList();
            Assert.Equal(32, links.Count);
            Assert.All(deviceAlerts, a => Assert.Contains(a.Item.TraceParent, links));
            // The summary has its own trace, and the seq continues after the device's alerts.
            Assert.True(ActivityContext.TryParse(item.TraceParent, null, out var context));
            Assert.DoesNotContain(readings, s => s.Reading.TraceParent!.Contains(context.TraceId.ToHexString()));
            Assert.Equal(deviceAlerts.Count + 1, item.Seq);
            Assert.Equal(kind, SensorKinds.Name(readings[0].Reading.Kind));
        }
        // The summarised readings left the journal.
        using var db = EdgeDatabase.Open(dir.Path);
        Assert.Equal(0, ReadingJournal.Count(db));
    }

    [Fact]
    public async Task A_redelivered_reading_is_acknowledged_once_and_counted_once()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(Start);
        await using var harness = await PipelineHarness.StartAsync(dir.Path, time);
        var reading = PipelineHarness.Reading("dev-1", SensorKind.Temperature, 21.5, 1, Start);
        Assert.Equal(AcceptResult.Accepted, await harness.Pipeline.AcceptAsync(reading, true, CancellationToken.None));
        Assert.Equal(AcceptResult.Duplicate, await harness.Pipeline.AcceptAsync(reading, true, CancellationToken.None));
        // Same seq, new time: the device restarted its counter; that is a new reading.
        Assert.Equal(AcceptResult.Accepted, await harness.Pipeline.AcceptAsync(reading with { Timestamp = Start.AddHours(1) }, true, CancellationToken.None));
        time.Advance(TimeSpan.FromMinutes(2));
        await Wait.UntilAsync(() => harness.Outbox.Count("summary") == 1, "summary");
        Assert.Equal(2, JsonDocument.Parse(Items(harness, "summary")[0].Item.Body).RootElement.GetProperty("count").GetInt64());
    }

    [Fact]
    public async Task Acknowledged_readings_survive_a_crash_and_rebuild_their_windows()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(Start);
        var samples = Samples("v1").Where(s => s.Reading.Seq <= 50).ToList();
        var harness = await PipelineHarness.StartAsync(dir.Path, time);
        await FeedAsync(harness, samples.Take(100).Select(s => s.Reading));
        var alertsBefore = samples.Take(100).Count(s => s.Score >= 0.5);
        await Wait.UntilAsync(() => harness.Outbox.Count("alert") == alertsBefore, "alerts before the crash");
        // The crash: the process goes away with every window open (nothing flushed, nothing summarised).
        await harness.DisposeAsync();

        await using var reopened = await PipelineHarness.StartAsync(dir.Path, time);
        Assert.Equal(alertsBefore, reopened.Outbox.Count("alert")); // recovery does not alert twice
        await FeedAsync(reopened, samples.Skip(100).Select(s => s.Reading));
        time.Advance(TimeSpan.FromMinutes(1));
        await Wait.UntilAsync(() => reopened.Outbox.Count("summary") == 4, "summaries after recovery");
        var total = Items(reopened, "summary").Sum(s => s.Body.GetProperty("count").GetInt64());
        Assert.Equal(samples.Count, total);
        var alerts = samples.Count(s => s.Score >= 0.5);
        Assert.Equal(alerts, reopened.Outbox.Count("alert"));
    }

    [Fact]
    public async Task Readings_journaled_but_not_processed_before_a_crash_are_processed_on_restart()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(Start);
        var samples = Samples("v1").Where(s => s.Reading.DeviceId == "dev-Vibration").ToList();
        var harness = await PipelineHarness.StartAsync(dir.Path, time);
        await FeedAsync(harness, samples.Select(s => s.Reading));
        var expectedAlerts = samples.Count(s => s.Score >= 0.5);
        await Wait.UntilAsync(() => harness.Outbox.Count("alert") == expectedAlerts, "alerts");
        await harness.DisposeAsync();

        // Put the database where a crash between the journal commit and the processing commit leaves it.
        using (var db = EdgeDatabase.Open(dir.Path))
        {
            EdgeDatabase.Execute(db, "DELETE FROM outbox; DELETE FROM sequences; UPDATE state SET value = 0 WHERE key = 'journal.processed';");
        }
        await using var reopened = await PipelineHarness.StartAsync(dir.Path, time);
        var alerts = Items(reopened, "alert");
        Assert.Equal(expectedAlerts, alerts.Count);
        Assert.Equal(samples.Where(s => s.Score >= 0.5).Select(s => s.Reading.TraceParent), alerts.Select(a => a.Item.TraceParent));
    }

    [Fact]
    public async Task A_resend_after_a_restart_of_a_reading_already_summarised_is_a_duplicate_and_makes_no_second_summary()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(Start);
        var window = TimeSpan.FromSeconds(10);
        var first = Enumerable.Range(1, 5).Select(i => PipelineHarness.Reading("dev-1", SensorKind.Temperature, 21 + 0.01 * i, i, Start.AddSeconds(i))).ToList();
        var harness = await PipelineHarness.StartAsync(dir.Path, time, window: window);
        await FeedAsync(harness, first);
        time.Advance(window);
        await Wait.UntilAsync(() => harness.Outbox.Count("summary") == 1, "the first window's summary");
        // The crash: the summarised readings are still journaled (their PUBACKs may have died with the process).
        await harness.DisposeAsync();
        using (var db = EdgeDatabase.Open(dir.Path)) Assert.Equal(first.Count, ReadingJournal.Count(db));

        await using var reopened = await PipelineHarness.StartAsync(dir.Path, time, window: window);
        Assert.Equal(0, reopened.Pipeline.OpenWindows);
        // The sensor resends its last reading: acknowledged, not counted again.
        Assert.Equal(AcceptResult.Duplicate, await reopened.Pipeline.AcceptAsync(first[^1], true, CancellationToken.None));
        var next = PipelineHarness.Reading("dev-1", SensorKind.Temperature, 21.5, 6, time.GetUtcNow());
        Assert.Equal(AcceptResult.Accepted, await reopened.Pipeline.AcceptAsync(next, true, CancellationToken.None));
        time.Advance(window);
        await Wait.UntilAsync(() => reopened.Outbox.Count("summary") == 2, "the second window's summary");
        await Wait.UntilAsync(() => reopened.Pipeline.OpenWindows == 0, "windows closed");
        Assert.Equal([5L, 1L], Items(reopened, "summary").Select(s => s.Body.GetProperty("count").GetInt64()));

        // Past the redelivery horizon (30 s) the next window close prunes the summarised readings; the newest
        // reading, summarised but inside the horizon, stays.
        time.Advance(TimeSpan.FromSeconds(40));
        Assert.Equal(AcceptResult.Accepted, await reopened.Pipeline.AcceptAsync(next with { Seq = 7, Timestamp = time.GetUtcNow() }, true, CancellationToken.None));
        time.Advance(window);
        await Wait.UntilAsync(() => reopened.Outbox.Count("summary") == 3, "the third window's summary");
        await Wait.UntilAsync(() =>
        {
            using var db = EdgeDatabase.Open(dir.Path);
            return ReadingJournal.Count(db) == 1;
        }, "the journal pruned to the last reading");
    }

    [Fact]
    public async Task A_reading_whose_processing_fails_stays_acknowledged_and_is_processed_once_the_state_is_rebuilt()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(Start);
        await using var harness = await PipelineHarness.StartAsync(dir.Path, time);
        var steady = Enumerable.Range(1, 40).Select(i => PipelineHarness.Reading("dev-1", SensorKind.Vibration, 1.2 + 0.05 * Math.Sin(i), i, Start.AddSeconds(i))).ToList();
        foreach (var reading in steady) await FeedAsync(harness, [reading]);
        Assert.Equal(0, harness.Outbox.Count("alert"));

        // The model breaks under the pipeline: scoring throws. The reading is journaled all the same, so acknowledged.
        harness.Models.Current.Dispose();
        var spike = PipelineHarness.Reading("dev-1", SensorKind.Vibration, 14.2, 41, Start.AddSeconds(41), ReadingTraces.NewTraceParent());
        Assert.Equal(AcceptResult.Accepted, await harness.Pipeline.AcceptAsync(spike, true, CancellationToken.None));
        using (var db = EdgeDatabase.Open(dir.Path)) Assert.Equal(41, ReadingJournal.Count(db));
        Assert.Equal(0, harness.Outbox.Count("alert"));

        // A working model again: before the next batch the state is rebuilt from the journal, the spike scored once.
        harness.Models.Swap(AnomalyModel.LoadDirectory(ModelFiles.Directory("v1")));
        time.Advance(harness.Options.TickInterval);
        await Wait.UntilAsync(() => harness.Outbox.Count("alert") == 1, "the spike's alert after the rebuild");
        var alert = Assert.Single(Items(harness, "alert"));
        Assert.Equal(spike.TraceParent, alert.Item.TraceParent);
        time.Advance(TimeSpan.FromMinutes(1));
        await Wait.UntilAsync(() => harness.Outbox.Count("summary") == 1, "the window's summary");
        Assert.Equal(41, Items(harness, "summary")[0].Body.GetProperty("count").GetInt64());
        Assert.Equal(1, harness.Outbox.Count("alert"));
    }

    [Fact]
    public async Task The_outbox_bound_drops_oldest_summaries_first_keeps_alerts_and_reports_every_drop()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(Start);
        var bound = new OutboxOptions { MaxBytes = 12_000, SummaryMaxAge = TimeSpan.FromHours(1), AlertMaxAge = TimeSpan.FromDays(1) };
        await using var harness = await PipelineHarness.StartAsync(dir.Path, time, window: TimeSpan.FromSeconds(10), outbox: bound);
        var dropped = new List<(long Value, string? Type, string? Reason)>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter == harness.Telemetry.Meter && instrument.Name == "cloudedge.edge.outbox.dropped") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string? type = null, reason = null;
            foreach (var tag in tags)
            {
                if (tag.Key == "type") type = (string?)tag.Value;
                if (tag.Key == "reason") reason = (string?)tag.Value;
            }
            lock (dropped) dropped.Add((value, type, reason));
        });
        listener.Start();

        // 20 devices x 6 windows of steady readings: 120 summaries, far more than 12 kB.
        var seq = 0;
        for (var w = 0; w < 6; w++)
        {
            var batch = Enumerable.Range(0, 20).Select(d => PipelineHarness.Reading($"dev-{d}", SensorKind.Temperature, 22 + 0.01 * (seq % 7), ++seq, time.GetUtcNow())).ToList();
            await FeedAsync(harness, batch);
            time.Advance(TimeSpan.FromSeconds(10));
        }
        // Then alerts from one device (a steady series and spikes).
        var spikes = Enumerable.Range(0, 40).Select(i => PipelineHarness.Reading("dev-hot", SensorKind.Vibration, i % 10 == 9 ? 12.0 : 1.2 + 0.05 * Math.Sin(i), i + 1, time.GetUtcNow()));
        foreach (var reading in spikes) await FeedAsync(harness, [reading]);
        time.Advance(TimeSpan.FromSeconds(10));
        await Wait.UntilAsync(() => harness.Pipeline.OpenWindows == 0, "windows closed");

        Assert.True(harness.Outbox.Bytes <= bound.MaxBytes, $"outbox holds {harness.Outbox.Bytes} bytes");
        var items = Items(harness);
        var summaries = items.Where(i => i.Item.Type == "summary").ToList();
        var alerts = items.Where(i => i.Item.Type == "alert").ToList();
        Assert.NotEmpty(alerts);
        Assert.True(summaries.Count < 121);
        // Oldest dropped first: what is left is the newest summaries.
        var kept = summaries.Select(s => s.Body.GetProperty("windowStart").GetString()).ToList();
        Assert.Equal(kept.OrderBy(k => k, StringComparer.Ordinal), kept);
        // Every drop is counted and reported upstream in drops items with their own seq.
        var drops = items.Where(i => i.Item.Type == "drops").ToList();
        Assert.NotEmpty(drops);
        Assert.Equal(Enumerable.Range(1, drops.Count).Select(i => (long)i), drops.Select(d => d.Item.Seq));
        Assert.All(drops, d => Assert.Equal($"gw-test:drops:{d.Item.Seq}", d.Item.ItemId("gw-test")));
        var reportedSummaries = drops.Sum(d => d.Body.GetProperty("summaries").GetInt64());
        long counted;
        lock (dropped) counted = dropped.Where(d => d.Type == "summary").Sum(d => d.Value);
        Assert.Equal(121 - summaries.Count, reportedSummaries);
        Assert.Equal(reportedSummaries, counted);
        Assert.All(drops, d => Assert.Equal("outbox_full", d.Body.GetProperty("reason").GetString()));

        // Age: an hour later the remaining summaries expire, the alerts (kept longest) stay.
        time.Advance(TimeSpan.FromMinutes(61));
        await Wait.UntilAsync(() => harness.Outbox.Count("summary") == 0, "summaries expired");
        Assert.Equal(alerts.Count, harness.Outbox.Count("alert"));
        var expired = Items(harness, "drops").Where(d => d.Body.GetProperty("reason").GetString() == "expired").ToList();
        Assert.Equal(summaries.Count, expired.Sum(d => d.Body.GetProperty("summaries").GetInt64()));
        Assert.Equal(0, expired.Sum(d => d.Body.GetProperty("alerts").GetInt64()));
    }

    [Fact]
    public async Task A_full_ingest_queue_holds_qos1_publishers_then_refuses_them_drops_qos0_and_reports_the_loss()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider(Start);
        // Not started yet: nothing drains the queue of two.
        await using var harness = await PipelineHarness.StartAsync(dir.Path, time, start: false,
            configure: o => { o.IngestCapacity = 2; o.IngestFullWait = TimeSpan.FromSeconds(5); });
        var queued = new[]
        {
            harness.Pipeline.AcceptAsync(PipelineHarness.Reading("d", SensorKind.Temperature, 21, 1, Start), true, CancellationToken.None).AsTask(),
            harness.Pipeline.AcceptAsync(PipelineHarness.Reading("d", SensorKind.Temperature, 21, 2, Start), true, CancellationToken.None).AsTask(),
        };
        // QoS 0 never waits: dropped at once.
        Assert.Equal(AcceptResult.Full, await harness.Pipeline.AcceptAsync(PipelineHarness.Reading("d", SensorKind.Temperature, 21, 3, Start), false, CancellationToken.None));
        // QoS 1 waits (its PUBACK held) for IngestFullWait, then is refused (0x97 at the broker).
        var held = harness.Pipeline.AcceptAsync(PipelineHarness.Reading("d", SensorKind.Temperature, 21, 4, Start), true, CancellationToken.None).AsTask();
        Assert.False(held.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(AcceptResult.Full, await held);
        Assert.Equal(2, harness.Pipeline.DroppedReadings);

        // Once the loop runs, the queued readings are journaled and acknowledged, and the loss goes upstream.
        await harness.Pipeline.StartAsync(CancellationToken.None);
        Assert.All(await Task.WhenAll(queued), r => Assert.Equal(AcceptResult.Accepted, r));
        await Wait.UntilAsync(() => harness.Outbox.Count("drops") == 1, "drops item");
        var drops = JsonDocument.Parse(harness.Outbox.ReadBatch(10, long.MaxValue).Single(i => i.Type == "drops").Body).RootElement;
        Assert.Equal(2, drops.GetProperty("readings").GetInt64());
        Assert.Equal("ingest_full", drops.GetProperty("reason").GetString());
    }
}
