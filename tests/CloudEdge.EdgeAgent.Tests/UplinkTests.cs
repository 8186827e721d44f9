using System.Diagnostics;
using CloudEdge.EdgePipeline;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Outbox;
using CloudEdge.EdgePipeline.Storage;
using CloudEdge.EdgePipeline.Uplink;

namespace CloudEdge.EdgeAgent.Tests;

/// <summary>
/// The uplink against a real HTTP endpoint on loopback implementing docs/uplink.md (see <see cref="FakeSilo"/>):
/// the Silo's own uplink route was not there yet when these were written.
/// </summary>
public sealed class UplinkTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 21, 18, 0, 0, TimeSpan.Zero);

    private static void InsertAlerts(OutboxStore outbox, string dataDirectory, IEnumerable<string> devices, int perDevice, ref long readingSeq)
    {
        using var db = EdgeDatabase.Open(dataDirectory);
        using var transaction = db.BeginTransaction();
        for (var i = 0; i < perDevice; i++)
        {
            foreach (var device in devices)
            {
                var reading = new SensorReading(device, SensorKind.Vibration, 9.5, Now, ++readingSeq, TelemetryPipeline.NewTraceParent(), null);
                outbox.InsertAlert(db, transaction, reading, 0.97, 0.5, "v1", reading.TraceParent!, Now);
            }
        }
        transaction.Commit();
        outbox.NotifyNewItems();
    }

    private static UplinkOptions Options(FakeSilo silo, SiloState state) => new()
    {
        SiloUrl = silo.Url,
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
        string[] devices = ["dev-0", "dev-1", "dev-2", "dev-3", "dev-4"];
        long readingSeq = 0;
        InsertAlerts(outbox, dir.Path, [.. devices, "dev-stranger"], 50, ref readingSeq);

        var options = Options(silo, state);
        var http = new SiloHttp(options, "gw-test");
        var sender = new UplinkSender(http, outbox, options, telemetry, TimeProvider.System);
        await sender.StartAsync(CancellationToken.None);
        await Wait.UntilAsync(() => state.Snapshot().Count >= 100, "first items applied");

        // The Silo dies; the agent keeps producing while it is down, then the agent restarts too.
        await silo.DisposeAsync();
        InsertAlerts(outbox, dir.Path, devices, 20, ref readingSeq);
        await sender.StopAsync(CancellationToken.None);
        sender.Dispose();
        http.Dispose();
        outbox.Dispose();

        outbox = new OutboxStore(dir.Path, new OutboxOptions(), telemetry);
        http = new SiloHttp(options, "gw-test");
        sender = new UplinkSender(http, outbox, options, telemetry, TimeProvider.System);
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
        long seq = 0;
        InsertAlerts(outbox, dir.Path, ["dev-0"], 3, ref seq);
        var options = Options(silo, state);
        options.Token = "not-the-token";
        using var http = new SiloHttp(options, "gw-test");
        using var sender = new UplinkSender(http, outbox, options, telemetry, TimeProvider.System);
        var (outcome, _) = await sender.SendOnceAsync(CancellationToken.None);
        Assert.Equal(UplinkOutcome.Failed, outcome);
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
        long seq = 0;
        InsertAlerts(outbox, dir.Path, ["dev-0", "dev-1"], 20, ref seq);
        var options = Options(silo, state);
        using var http = new SiloHttp(options, "gw-test");
        using var sender = new UplinkSender(http, outbox, options, telemetry, TimeProvider.System);
        for (var i = 0; i < 50 && outbox.Count() > 0; i++) await sender.SendOnceAsync(CancellationToken.None);

        Assert.Equal(0, outbox.Count());
        Assert.Equal(40, state.Applied.Count);
        Assert.Equal(0, outbox.DeadLetterCount());
        Assert.Contains(state.BatchSizes, b => b > 7);           // the first try was refused with 413
        Assert.All(state.Applied.Take(5), id => Assert.StartsWith("gw-test:dev-", id));
    }
}
