using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using CloudEdge.EdgePipeline.Tracing;
using CloudEdge.EdgePipeline;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Outbox;
using CloudEdge.EdgePipeline.Storage;
using CloudEdge.EdgePipeline.Uplink;
using CloudEdge.EdgePipeline.Windows;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CloudEdge.EdgeAgent.Tests;

/// <summary>Outbox items written and notified as the pipeline does it (a transaction, a commit, then the notification).</summary>
internal static class UplinkTestItems
{
    private static readonly DateTimeOffset Now = new(2026, 11, 21, 18, 0, 0, TimeSpan.Zero);

    public static void Alerts(OutboxStore outbox, UplinkWakeup wakeup, string dataDirectory, IEnumerable<string> devices, int perDevice, ref long readingSeq)
    {
        using var db = EdgeDatabase.Open(dataDirectory);
        using var transaction = db.BeginTransaction();
        for (var i = 0; i < perDevice; i++)
        {
            foreach (var device in devices)
            {
                var reading = new SensorReading(device, SensorKind.Vibration, 9.5, Now, ++readingSeq, ReadingTraces.NewTraceParent(), null);
                outbox.InsertAlert(db, transaction, reading, 0.97, 0.5, "v1", reading.TraceParent!, Now);
            }
        }
        transaction.Commit();
        wakeup.ItemsCommitted(alert: true);
    }

    /// <summary>A closed window's summary, committed and notified as the pipeline does it.</summary>
    public static void Summary(OutboxStore outbox, UplinkWakeup wakeup, string dataDirectory, string device, int window)
    {
        var start = Now.AddMinutes(window);
        var summary = new WindowAccumulator(device, SensorKind.Vibration, start, start.AddMinutes(1), 32);
        summary.Add(2.5, 0.1, false, "v1", null);
        using var db = EdgeDatabase.Open(dataDirectory);
        using var transaction = db.BeginTransaction();
        Assert.True(outbox.InsertSummary(db, transaction, summary, ReadingTraces.NewTraceParent(), Now));
        transaction.Commit();
        wakeup.ItemsCommitted(alert: false);
    }
}

/// <summary>
/// The uplink against a real HTTP endpoint on loopback implementing docs/uplink.md (see <see cref="FakeSilo"/>):
/// the Silo's own uplink route was not there yet when these were written.
/// </summary>
public sealed class UplinkTests
{
    private static UplinkOptions Options(string siloUrl, SiloState state) => new()
    {
        SiloUrl = siloUrl,
        Token = state.Token,
        MaxBatchItems = 40,
        BatchDelay = TimeSpan.FromMilliseconds(10),
        RetryBaseDelay = TimeSpan.FromMilliseconds(20),
        RetryMaxDelay = TimeSpan.FromMilliseconds(200),
        OutageDelay = TimeSpan.FromMilliseconds(100),
        BreakDuration = TimeSpan.FromMilliseconds(500),
        RequestTimeout = TimeSpan.FromSeconds(20),
        MaxItemsPerSecond = 100_000,
    };

    [Fact]
    public async Task Every_item_is_applied_exactly_once_in_device_order_across_silo_failures_and_restarts_of_both_sides()
    {
        using var dir = new TempDirectory();
        var state = new SiloState { FailNext = 2, LoseAckNext = 1 };
        state.UnknownDevices.Add("dev-stranger");
        var silo = await FakeSilo.StartAsync(state);
        var port = silo.Port;
        using var telemetry = new EdgeTelemetry();
        var outbox = new OutboxStore(dir.Path, new OutboxOptions(), telemetry);
        using var wakeup = new UplinkWakeup();
        string[] devices = ["dev-0", "dev-1", "dev-2", "dev-3", "dev-4"];
        long readingSeq = 0;
        UplinkTestItems.Alerts(outbox, wakeup, dir.Path, [.. devices, "dev-stranger"], 50, ref readingSeq);

        var options = Options(silo.Url, state);
        var http = new SiloHttp(options, "gw-test");
        var sender = new UplinkSender(http, outbox, wakeup, options, telemetry, TimeProvider.System);
        await sender.StartAsync(CancellationToken.None);
        await Wait.UntilAsync(() => state.Snapshot().Count >= 100, "first items applied");

        // The Silo dies; the agent keeps producing while it is down, then the agent restarts too.
        await silo.DisposeAsync();
        UplinkTestItems.Alerts(outbox, wakeup, dir.Path, devices, 20, ref readingSeq);
        await sender.StopAsync(CancellationToken.None);
        sender.Dispose();
        http.Dispose();
        outbox.Dispose();

        outbox = new OutboxStore(dir.Path, new OutboxOptions(), telemetry);
        http = new SiloHttp(options, "gw-test");
        sender = new UplinkSender(http, outbox, wakeup, options, telemetry, TimeProvider.System);
        await sender.StartAsync(CancellationToken.None);
        silo = await FakeSilo.StartAsync(state, port);
        try
        {
            await Wait.UntilAsync(() => outbox.Count() == 0, "outbox drained");
        }
        finally
        {
            await sender.StopAsync(CancellationToken.None);
            sender.Dispose();
            http.Dispose();
            await silo.DisposeAsync();
        }

        // Exactly once: every item of a known device applied, none twice; the lost acknowledgement came back as duplicates.
        Assert.Equal(devices.Length * 70, state.Applied.Count);
        Assert.Equal(state.Applied.Count, state.Applied.Distinct().Count());
        Assert.True(state.Duplicates >= 1, "the batch whose acknowledgement was lost is sent again and acknowledged as duplicate");
        foreach (var device in devices)
        {
            var seqs = state.AppliedItems.Where(i => i.Item.GetProperty("deviceId").GetString() == device).Select(i => i.Item.GetProperty("seq").GetInt64()).ToList();
            Assert.Equal(Enumerable.Range(1, 70).Select(i => (long)i), seqs); // in order, no gap
        }
        // The stranger's items were rejected permanently: dead-lettered, not retried.
        var dead = outbox.DeadLetters();
        Assert.Equal(50, dead.Count);
        Assert.All(dead, d => Assert.Equal("unknown_device", d.Code));
        Assert.All(dead, d => Assert.StartsWith("gw-test:dev-stranger:", d.ItemId));
        // Every request: gzip, the gateway's bearer token, a W3C traceparent.
        Assert.All(state.Requests, r =>
        {
            Assert.Equal("gzip", r.Encoding);
            Assert.Equal("Bearer gateway-token", r.Authorization);
            Assert.True(ActivityContext.TryParse(r.TraceParent, null, out _), $"traceparent '{r.TraceParent}'");
        });
        // Items carry their alert bodies and trace contexts as the contract shows them.
        var first = state.AppliedItems[0].Item;
        Assert.Equal("alert", first.GetProperty("type").GetString());
        Assert.Equal(0.97, first.GetProperty("alert").GetProperty("score").GetDouble());
        Assert.True(ActivityContext.TryParse(first.GetProperty("traceparent").GetString(), null, out _));
        outbox.Dispose();
    }

    [Fact]
    public async Task A_refused_token_keeps_items_in_the_outbox()
    {
        using var dir = new TempDirectory();
        var state = new SiloState();
        await using var silo = await FakeSilo.StartAsync(state);
        using var telemetry = new EdgeTelemetry();
        using var outbox = new OutboxStore(dir.Path, new OutboxOptions(), telemetry);
        using var wakeup = new UplinkWakeup();
        long seq = 0;
        UplinkTestItems.Alerts(outbox, wakeup, dir.Path, ["dev-0"], 3, ref seq);
        var options = Options(silo.Url, state);
        options.Token = "not-the-token";
        using var http = new SiloHttp(options, "gw-test");
        using var sender = new UplinkSender(http, outbox, wakeup, options, telemetry, TimeProvider.System);
        var (outcome, _) = await sender.SendOnceAsync(CancellationToken.None);
        Assert.Equal(UplinkAttempt.Failed, outcome);
        Assert.Equal(3, outbox.Count());
        Assert.Empty(state.Applied);
        Assert.Equal(0, outbox.DeadLetterCount());
    }

    [Fact]
    public async Task A_batch_the_silo_finds_too_large_is_split_until_it_fits()
    {
        using var dir = new TempDirectory();
        var state = new SiloState { MaxItems = 7 };
        await using var silo = await FakeSilo.StartAsync(state);
        using var telemetry = new EdgeTelemetry();
        using var outbox = new OutboxStore(dir.Path, new OutboxOptions(), telemetry);
        using var wakeup = new UplinkWakeup();
        long seq = 0;
        UplinkTestItems.Alerts(outbox, wakeup, dir.Path, ["dev-0", "dev-1"], 20, ref seq);
        var options = Options(silo.Url, state);
        using var http = new SiloHttp(options, "gw-test");
        using var sender = new UplinkSender(http, outbox, wakeup, options, telemetry, TimeProvider.System);
        for (var i = 0; i < 50 && outbox.Count() > 0; i++) await sender.SendOnceAsync(CancellationToken.None);

        Assert.Equal(0, outbox.Count());
        Assert.Equal(40, state.Applied.Count);
        Assert.Equal(0, outbox.DeadLetterCount());
        Assert.Contains(state.BatchSizes, b => b > 7);           // the first try was refused with 413
        Assert.All(state.Applied.Take(5), id => Assert.StartsWith("gw-test:dev-", id));
    }
}

/// <summary>
/// When the uplink sends (docs/edge-agent.md, "Uplink"): summaries wait <see cref="UplinkOptions.BatchDelay"/>,
/// alerts end the wait at once and keep each device's order, and a backlog drains at the bounded rate. The clock
/// is manual (a one-minute batch delay never passes unless the test moves it); the endpoint is a real Kestrel one
/// answering like the Silo (<see cref="SiloState"/>).
/// </summary>
public sealed class UplinkTimingTests
{
    private static readonly TimeSpan BatchDelay = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task A_summary_alone_waits_for_the_batch_delay()
    {
        await using var uplink = await ManualUplink.WithWaitingSummaryAsync();

        uplink.Time.Advance(BatchDelay - TimeSpan.FromSeconds(1));
        Assert.Empty(uplink.State.Requests); // the sender waits on the delay alone, which has not passed

        uplink.Time.Advance(TimeSpan.FromSeconds(1));
        await Wait.UntilAsync(() => uplink.State.Snapshot().Count == 1, "the summary sent when the batch delay passed");
        Assert.Single(uplink.State.Requests);
    }

    [Fact]
    public async Task An_alert_ends_the_batch_delay_at_once_and_goes_out_behind_the_summary_of_its_device()
    {
        await using var uplink = await ManualUplink.WithWaitingSummaryAsync();
        uplink.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Empty(uplink.State.Requests);

        uplink.Alert("dev-0");
        await Wait.UntilAsync(() => uplink.State.Snapshot().Count == 2, "the alert sent without the batch delay passing");

        Assert.Equal(TimeSpan.FromSeconds(30), uplink.Elapsed); // the clock never reached the delay's end
        Assert.Equal([2], uplink.State.BatchSizes);            // one request: the waiting summary went with it
        var sent = uplink.State.Snapshot().Select(i => (Type: i.Item.GetProperty("type").GetString(), Seq: i.Item.GetProperty("seq").GetInt64())).ToList();
        Assert.Equal([("summary", 1L), ("alert", 2L)], sent);   // the device's order kept
        await Wait.UntilAsync(() => uplink.Outbox.Count() == 0, "both acknowledged");
    }

    [Fact]
    public async Task An_alert_added_while_a_batch_is_in_flight_goes_out_in_the_next_request_without_the_delay()
    {
        await using var uplink = await ManualUplink.StartAsync(holdFirstRequest: true);
        await uplink.WaitUntilIdleAsync();
        uplink.Alert("dev-0");
        await uplink.FirstRequestHeld.WaitAsync(Wait.Long);

        // While the first request is held: a summary, then an alert of another device.
        uplink.Summary("dev-1", window: 0);
        uplink.Alert("dev-1");
        uplink.ReleaseFirstRequest();
        await Wait.UntilAsync(() => uplink.State.Snapshot().Count == 3, "the items added in flight sent");

        Assert.Equal(TimeSpan.Zero, uplink.Elapsed);
        Assert.Equal([1, 2], uplink.State.BatchSizes);
        var dev1 = uplink.State.Snapshot().Where(i => i.Item.GetProperty("deviceId").GetString() == "dev-1")
            .Select(i => i.Item.GetProperty("type").GetString()).ToList();
        Assert.Equal(["summary", "alert"], dev1);
    }

    [Fact]
    public async Task An_alert_request_carries_only_its_devices_items_and_the_others_wait_for_the_batch_delay()
    {
        await using var uplink = await ManualUplink.WithWaitingSummaryAsync(); // dev-0's summary, seq 1
        uplink.Summary("dev-1", window: 0);
        uplink.Summary("dev-0", window: 1);
        uplink.Time.Advance(TimeSpan.FromSeconds(20));

        uplink.Alert("dev-1");
        await Wait.UntilAsync(() => uplink.State.Snapshot().Count == 2, "dev-1's items sent without the batch delay passing");
        Assert.Equal(TimeSpan.FromSeconds(20), uplink.Elapsed);
        Assert.Equal([2], uplink.State.BatchSizes);
        Assert.Equal([("dev-1", "summary", 1L), ("dev-1", "alert", 2L)], Sent(uplink.State.Snapshot()));
        await Wait.UntilAsync(() => uplink.Outbox.Count() == 2, "dev-1's items acknowledged, dev-0's still waiting");

        // dev-0's summaries keep the wait they were in: its end (BatchDelay after the first summary) does not move.
        await uplink.WaitUntilTimerAsync(BatchDelay - TimeSpan.FromSeconds(20));
        uplink.Time.Advance(BatchDelay - TimeSpan.FromSeconds(21));
        Assert.Equal(2, uplink.State.Snapshot().Count);
        uplink.Time.Advance(TimeSpan.FromSeconds(1));
        await Wait.UntilAsync(() => uplink.State.Snapshot().Count == 4, "dev-0's summaries sent when the batch delay passed");

        Assert.Equal([2, 2], uplink.State.BatchSizes);
        Assert.Equal([("dev-0", "summary", 1L), ("dev-0", "summary", 2L)], Sent(uplink.State.Snapshot()).Skip(2));
        AssertEachDeviceInSeqOrder(uplink.State.Snapshot());
        await Wait.UntilAsync(() => uplink.Outbox.Count() == 0, "all acknowledged");
    }

    [Fact]
    public async Task An_alert_during_a_drain_goes_ahead_of_other_devices_within_the_bound_and_in_its_devices_order()
    {
        const int perDevice = 30, batch = 10, rate = 100;
        await using var uplink = await ManualUplink.StartDrainingAsync(batch, rate);
        for (var window = 0; window < perDevice; window++)
        {
            uplink.Summary("dev-0", window);
            uplink.Summary("dev-1", window);
        }
        await uplink.StartSenderAsync();

        var alerted = false;
        var deadline = DateTime.UtcNow + Wait.Long;
        while (uplink.State.Snapshot().Count < (2 * perDevice) + 1 && DateTime.UtcNow < deadline)
        {
            if (!alerted && uplink.State.Snapshot().Count >= 2 * batch)
            {
                // The backlog is draining: both devices have items left, oldest first they alternate.
                uplink.Alert("dev-1");
                alerted = true;
            }
            await uplink.DrainStepAsync(batch, rate);
        }

        var items = uplink.State.Snapshot();
        Assert.Equal((2 * perDevice) + 1, items.Count);
        AssertEachDeviceInSeqOrder(items);
        var all = Sent(items);
        var alertAt = all.FindIndex(i => i.Type == "alert");
        Assert.Equal(("dev-1", "alert", perDevice + 1L), all[alertAt]);
        Assert.Contains(all.Skip(alertAt + 1), i => i.Device == "dev-0"); // dev-0's backlog did not hold the alert back
    }

    private static List<(string? Device, string? Type, long Seq)> Sent(IEnumerable<(string Id, System.Text.Json.JsonElement Item)> items) =>
        items.Select(i => (i.Item.GetProperty("deviceId").GetString(), i.Item.GetProperty("type").GetString(), i.Item.GetProperty("seq").GetInt64())).ToList();

    /// <summary>Every device's items reached the Silo in seq order, each once, none missing.</summary>
    private static void AssertEachDeviceInSeqOrder(IEnumerable<(string Id, System.Text.Json.JsonElement Item)> items)
    {
        foreach (var device in Sent(items).GroupBy(i => i.Device))
        {
            Assert.Equal(Enumerable.Range(1, device.Count()).Select(i => (long)i), device.Select(i => i.Seq));
        }
    }

    [Fact]
    public async Task A_backlog_drains_no_faster_than_MaxItemsPerSecond_after_a_burst_of_one_batch()
    {
        const int items = 60, batch = 10, rate = 100;
        await using var uplink = await ManualUplink.StartDrainingAsync(batch, rate);
        for (var i = 0; i < items / 2; i++)
        {
            uplink.Alert("dev-0");
            uplink.Alert("dev-1");
        }
        await uplink.StartSenderAsync();

        var deadline = DateTime.UtcNow + Wait.Long;
        while (uplink.State.Snapshot().Count < items && DateTime.UtcNow < deadline)
        {
            await uplink.DrainStepAsync(batch, rate);
        }

        Assert.Equal(items, uplink.State.Snapshot().Count);
        Assert.True(uplink.Elapsed >= TimeSpan.FromSeconds((items - (2.0 * batch)) / rate), $"drained in {uplink.Elapsed.TotalMilliseconds} ms of the clock");
        AssertEachDeviceInSeqOrder(uplink.State.Snapshot());
    }

    /// <summary>
    /// A sender on a manual clock against the loopback endpoint (whose first request can be held). The sender sees
    /// the clock through <see cref="TimerLog"/>, so the test knows what it waits on: its idle recheck (30 s) or the
    /// batch delay. Requests take no time on this clock, so the request timeout is far away.
    /// </summary>
    private sealed class ManualUplink : IAsyncDisposable
    {
        private readonly TempDirectory _directory = new();
        private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly EdgeTelemetry _telemetry = new();
        private readonly DateTimeOffset _start;
        private readonly TimerLog _timers;
        private WebApplication _silo = null!;
        private SiloHttp _http = null!;
        private UplinkSender _sender = null!;
        private long _readingSeq;

        private ManualUplink()
        {
            Outbox = new OutboxStore(_directory.Path, new OutboxOptions(), _telemetry);
            _start = Time.GetUtcNow();
            _timers = new TimerLog(Time);
        }

        public ManualTimeProvider Time { get; } = new(new DateTimeOffset(2026, 11, 21, 18, 0, 0, TimeSpan.Zero));
        public SiloState State { get; } = new();
        public OutboxStore Outbox { get; }
        public UplinkWakeup Wakeup { get; } = new();
        public Task FirstRequestHeld => _held.Task;
        public TimeSpan Elapsed => Time.GetUtcNow() - _start;

        public static async Task<ManualUplink> StartAsync(bool holdFirstRequest = false, Action<UplinkOptions>? configure = null, bool startSender = true)
        {
            var uplink = new ManualUplink();
            if (!holdFirstRequest) uplink._release.SetResult();
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
            uplink._silo = builder.Build();
            var first = 1;
            uplink._silo.MapPost("/api/v1/gateways/{gatewayId}/uplink", async (string gatewayId, HttpContext context) =>
            {
                if (Interlocked.Exchange(ref first, 0) == 1)
                {
                    uplink._held.TrySetResult();
                    await uplink._release.Task;
                }
                await uplink.State.UplinkAsync(gatewayId, context);
            });
            await uplink._silo.StartAsync();
            var options = new UplinkOptions
            {
                SiloUrl = uplink._silo.Urls.First(),
                Token = uplink.State.Token,
                BatchDelay = BatchDelay,
                MaxItemsPerSecond = 100_000,
                RequestTimeout = TimeSpan.FromHours(1),
            };
            configure?.Invoke(options);
            uplink._http = new SiloHttp(options, uplink.State.GatewayId);
            uplink._sender = new UplinkSender(uplink._http, uplink.Outbox, uplink.Wakeup, options, uplink._telemetry, uplink._timers);
            if (startSender) await uplink.StartSenderAsync();
            return uplink;
        }

        /// <summary>A sender not started yet, sending at most <paramref name="batch"/> items a request and <paramref name="rate"/> a second.</summary>
        public static Task<ManualUplink> StartDrainingAsync(int batch, int rate) => StartAsync(configure: o =>
        {
            o.MaxBatchItems = batch;
            o.MaxItemsPerSecond = rate;
        }, startSender: false);

        /// <summary>
        /// Checks the drain bound so far (never more than the burst of one batch, the batch that overspends, and the
        /// rate since the start), then moves the clock 10 ms and lets the sender run.
        /// </summary>
        public async Task DrainStepAsync(int batch, int rate)
        {
            var sent = State.Snapshot().Count;
            Assert.True(sent <= (2 * batch) + (rate * Elapsed.TotalSeconds) + 1e-6, $"{sent} items sent after {Elapsed.TotalMilliseconds} ms");
            Time.Advance(TimeSpan.FromMilliseconds(10));
            await Task.Delay(5);
        }

        /// <summary>A sender that was idle, then got one summary of dev-0, and now waits on the batch delay.</summary>
        public static async Task<ManualUplink> WithWaitingSummaryAsync()
        {
            var uplink = await StartAsync();
            await uplink.WaitUntilIdleAsync();
            uplink.Summary("dev-0", window: 0);
            await uplink.WaitUntilTimerAsync(BatchDelay);
            return uplink;
        }

        public Task StartSenderAsync() => _sender.StartAsync(CancellationToken.None);

        public void Summary(string device, int window) => UplinkTestItems.Summary(Outbox, Wakeup, _directory.Path, device, window);

        public void Alert(string device) => UplinkTestItems.Alerts(Outbox, Wakeup, _directory.Path, [device], 1, ref _readingSeq);

        public void ReleaseFirstRequest() => _release.TrySetResult();

        /// <summary>The sender read an empty outbox and waits for a notification (its idle recheck timer is armed).</summary>
        public Task WaitUntilIdleAsync() => WaitUntilTimerAsync(TimeSpan.FromSeconds(30));

        /// <summary>The sender armed a timer due after <paramref name="dueTime"/> (what it waits on now).</summary>
        public Task WaitUntilTimerAsync(TimeSpan dueTime) => Wait.UntilAsync(() => _timers.Created(dueTime) > 0, $"a timer of {dueTime} armed");

        public async ValueTask DisposeAsync()
        {
            _release.TrySetResult();
            await _sender.StopAsync(CancellationToken.None);
            _sender.Dispose();
            _http.Dispose();
            await _silo.StopAsync();
            await _silo.DisposeAsync();
            Outbox.Dispose();
            Wakeup.Dispose();
            _telemetry.Dispose();
            _directory.Dispose();
        }
    }

    /// <summary>The manual clock as the code under test sees it, counting the timers created per due time.</summary>
    private sealed class TimerLog(ManualTimeProvider clock) : TimeProvider
    {
        private readonly ConcurrentDictionary<TimeSpan, int> _created = new();

        public int Created(TimeSpan dueTime) => _created.GetValueOrDefault(dueTime);

        public override long TimestampFrequency => clock.TimestampFrequency;

        public override long GetTimestamp() => clock.GetTimestamp();

        public override DateTimeOffset GetUtcNow() => clock.GetUtcNow();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            _created.AddOrUpdate(dueTime, 1, (_, n) => n + 1);
            return clock.CreateTimer(callback, state, dueTime, period);
        }
    }
}
