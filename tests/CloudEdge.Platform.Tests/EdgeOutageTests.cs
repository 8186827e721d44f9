using System.Globalization;
using System.Text.Json;
using CloudEdge.Testing.Sse;

namespace CloudEdge.Platform.Tests;

/// <summary>
/// Issue 4, item 7: the Silo, the edge agent and simulated sensors as separate processes on loopback. The Silo is
/// killed for a while, the agent is killed and restarted in the middle of that outage, the Silo comes back on its
/// data directory; then, from the Silo's side, every summary and alert arrived exactly once, in order per device,
/// and the summaries count what the sensors were told is stored.
/// </summary>
public sealed class EdgeOutageTests
{
    private const int Devices = 4;

    [Fact]
    public async Task Summaries_and_alerts_arrive_exactly_once_in_order_across_a_silo_outage_and_an_agent_kill()
    {
        await using var platform = await LocalPlatform.StartAsync(new LocalPlatformOptions
        {
            Devices = Devices,
            WindowLength = TimeSpan.FromSeconds(1),
            AgentConfiguration = new Dictionary<string, string>
            {
                ["EdgeAgent:Uplink:BatchDelay"] = "00:00:00.020",
                // Notice the Silo's return within about a second, so the test's drain is short.
                ["EdgeAgent:Uplink:OutageDelay"] = "00:00:00.500",
                ["EdgeAgent:Uplink:RetryBaseDelay"] = "00:00:00.100",
                ["EdgeAgent:Uplink:RetryMaxDelay"] = "00:00:00.500",
                ["EdgeAgent:Uplink:BreakDuration"] = "00:00:01",
            },
        });
        var gateway = platform.Options.GatewayId;
        var agentDb = Path.Combine(platform.Agent.Settings.DataDirectory, "edge.db");
        // Runs until stopped (SIGINT), so every phase below happens while the sensors publish.
        var settings = platform.Simulator() with { Rate = 10, Qos = 1, AnomalyRate = 0.05, Seed = 7 };
        var simulator = SimulatorProcess.Start(settings);
        await using (simulator)
        {
            using (var admin = platform.AdminClient())
            {
                await UntilAsync(platform, simulator, async () => (await HealthAsync(admin, gateway)).GetProperty("applied").GetInt64() >= 2 * Devices,
                    "items applied before the outage");
            }

            // The Silo dies with uplinks in flight; the agent keeps acknowledging sensors and fills its outbox.
            platform.Silo.Kill();
            await UntilAsync(platform, simulator, async () => await OutboxCountAsync(agentDb) >= 3 * Devices, "the outbox filling during the outage");

            // The agent dies too (SIGKILL: nothing flushed) and comes back on its journal and outbox, the Silo still down.
            await platform.RestartAgentAsync();
            var afterRestart = await OutboxCountAsync(agentDb);
            await UntilAsync(platform, simulator, async () => await OutboxCountAsync(agentDb) >= afterRestart + 3 * Devices,
                "the sensors publishing to the restarted agent");
            Assert.False(simulator.HasExited, simulator.Output);

            // The Silo comes back on its data directory and the backlog drains.
            await platform.RestartSiloAsync();
            using (var admin = platform.AdminClient())
            {
                var before = (await HealthAsync(admin, gateway)).GetProperty("applied").GetInt64();
                await UntilAsync(platform, simulator, async () => (await HealthAsync(admin, gateway)).GetProperty("applied").GetInt64() > before + 2 * Devices,
                    "the backlog draining");
            }

            // The sensors stop; each waits for its outstanding PUBACKs, then the simulator writes what it sent.
            Assert.Equal(0, await simulator.StopAsync("INT", TimeSpan.FromMinutes(1)));
        }

        var sensors = ReadSensorTotals(settings.SummaryFile!);
        Assert.Equal(platform.DeviceIds.OrderBy(d => d, StringComparer.Ordinal), sensors.Keys.OrderBy(d => d, StringComparer.Ordinal));
        // The agent restart hit the sensors: each lost its connection and came back.
        Assert.All(sensors.Values, s => Assert.True(s.Reconnects >= 1, $"{s.DeviceId}: no reconnect"));

        // Everything the agent will ever send is out: every journaled reading is in a summary and the outbox is empty.
        await UntilAsync(platform, null, async () => await SqliteScalarAsync(agentDb, AllSummarisedAndSent) == 0,
            "the agent to summarise and deliver everything");
        Assert.Equal(0, await SqliteScalarAsync(agentDb, "SELECT COUNT(*) FROM dead_letter"));

        using var client = platform.AdminClient();
        long itemsApplied = 0, alertsSeen = 0;
        foreach (var device in platform.DeviceIds)
        {
            var sent = sensors[device];
            using var twin = JsonDocument.Parse(await client.GetStringAsync($"api/v1/devices/{device}"));
            var highest = twin.RootElement.GetProperty("highestSeq").GetProperty(gateway).GetInt64();
            var events = await ReadItemEventsAsync(client, device, highest);
            // The live stream is at least once across a Silo crash (Grains/Streams/StreamOutbox.cs: an event stored
            // but not yet published when the Silo died is published again on reactivation): a repeat must be the
            // very same event. Applying is exactly once, which the twin's and gateway's counters below show.
            var items = events.DistinctBy(i => i.ItemId, StringComparer.Ordinal).ToList();
            Assert.All(events, e => Assert.Equal(items.Single(i => i.ItemId == e.ItemId), e));

            // In order, no gap: the device's items carry seq 1, 2, ..., highest.
            Assert.True(items.Select(i => i.Seq).SequenceEqual(Enumerable.Range(1, (int)highest).Select(i => (long)i)),
                $"{device}: highest seq {highest}, the live stream has\n{string.Join('\n', events)}");
            Assert.All(items, i => Assert.Equal($"{gateway}:{device}:{i.Seq}", i.ItemId));

            // The summaries count every reading the sensor was told is stored, and nothing it did not send.
            var counted = items.Where(i => i.Type == "summary").Sum(i => i.Count);
            Assert.True(sent.Acked <= counted && counted <= sent.Sent, $"{device}: acknowledged {sent.Acked}, counted {counted}, sent {sent.Sent}");
            Assert.All(items.Where(i => i.Type == "summary"), i => Assert.Equal(sent.Kind, i.Kind));

            // Alerts exactly once: one per anomalous reading, as many as the twin counted.
            var alerts = items.Where(i => i.Type == "alert").ToList();
            Assert.Equal(alerts.Count, alerts.Select(a => a.ReadingSeq).Distinct().Count());
            Assert.Equal(alerts.Count, twin.RootElement.GetProperty("alerts").GetProperty("total").GetInt64());
            itemsApplied += highest;
            alertsSeen += alerts.Count;
        }

        Assert.True(alertsSeen > 0, "the anomaly rate should have raised alerts");
        // The gateway's counters are written after the devices' (Silo/Edge/UplinkBatch.cs), so a Silo killed between
        // the two loses that request's counts, and the agent's resend then counts as duplicates: applied may fall
        // short of the items applied, never exceed them, and applied + duplicates covers them.
        var health = await HealthAsync(client, gateway);
        var applied = health.GetProperty("applied").GetInt64();
        Assert.True(applied <= itemsApplied && itemsApplied <= applied + health.GetProperty("duplicates").GetInt64(),
            $"items applied {itemsApplied}, gateway health {health}");
        Assert.Equal(0, health.GetProperty("rejected").GetInt64());
        Assert.Equal(0, health.GetProperty("drops").GetProperty("reports").GetInt64());
    }

    /// <summary>Rows of the agent's edge.db (docs/edge-agent.md) still to become uplink traffic: journaled readings
    /// of windows not yet summarised, and outbox items not yet acknowledged by the Silo.</summary>
    private const string AllSummarisedAndSent = """
        SELECT (SELECT COUNT(*) FROM outbox)
             + (SELECT COUNT(*) FROM readings r WHERE NOT EXISTS
                   (SELECT 1 FROM closed_windows c WHERE c.key = r.device || '|' || r.kind || '|' || r.window_start))
        """;

    private sealed record SensorTotals(string DeviceId, string Kind, long Sent, long Acked, long Reconnects);

    private sealed record ItemEvent(string Type, string ItemId, long Seq, string Kind, long Count, long ReadingSeq);

    /// <summary>Waits (generously: the machine may be loaded); a timeout carries the processes' output as it is then.</summary>
    private static async Task UntilAsync(LocalPlatform platform, HostProcess? simulator, Func<Task<bool>> condition, string what)
    {
        try
        {
            await Wait.UntilAsync(condition, what, TimeSpan.FromMinutes(3));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\n{platform.Diagnostics()}\n--- simulator ---\n{simulator?.Output}", e);
        }
    }

    private static async Task<JsonElement> HealthAsync(HttpClient admin, string gateway)
    {
        using var view = JsonDocument.Parse(await admin.GetStringAsync($"api/v1/gateways/{gateway}"));
        return view.RootElement.GetProperty("health").Clone();
    }

    private static Task<long> OutboxCountAsync(string database) => SqliteScalarAsync(database, "SELECT COUNT(*) FROM outbox");

    /// <summary>The agent's own database read with the sqlite3 shell (a second reader; WAL lets it read while the agent writes).</summary>
    private static async Task<long> SqliteScalarAsync(string database, string sql)
    {
        if (!File.Exists(database))
        {
            return 0;
        }

        var result = await ExternalProcess.RunAsync("sqlite3", ["-cmd", ".timeout 10000", database, sql], TimeSpan.FromSeconds(60));
        Assert.True(result.ExitCode == 0, $"sqlite3 {sql}: {result.Stderr}");
        return long.Parse(result.StdoutText.Trim(), CultureInfo.InvariantCulture);
    }

    private static Dictionary<string, SensorTotals> ReadSensorTotals(string summaryFile)
    {
        using var summary = JsonDocument.Parse(File.ReadAllText(summaryFile));
        return summary.RootElement.GetProperty("devices").EnumerateArray().Select(d => new SensorTotals(
                d.GetProperty("deviceId").GetString()!,
                d.GetProperty("kind").GetString()!,
                d.GetProperty("sent").GetInt64(),
                d.GetProperty("acked").GetInt64(),
                d.GetProperty("reconnects").GetInt64()))
            .ToDictionary(d => d.DeviceId, StringComparer.Ordinal);
    }

    /// <summary>
    /// The device's summaries and alerts as the Silo's durable live stream has them (docs/api.md, live), from its
    /// first event: read until <paramref name="expected"/> items came, then until the stream has been quiet a
    /// moment, so an extra (duplicated) item behind them would be seen too.
    /// </summary>
    private static async Task<List<ItemEvent>> ReadItemEventsAsync(HttpClient admin, string device, long expected)
    {
        var items = new List<ItemEvent>();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        using var response = await admin.GetAsync($"api/v1/live/devices/{device}?replay=1000", HttpCompletionOption.ResponseHeadersRead, deadline.Token);
        Assert.True(response.IsSuccessStatusCode, $"live stream of {device}: {(int)response.StatusCode}");
        using var reader = new ServerSentEventReader(await response.Content.ReadAsStreamAsync(deadline.Token));
        while (true)
        {
            using var quiet = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token);
            if (items.Count >= expected)
            {
                quiet.CancelAfter(TimeSpan.FromSeconds(2));
            }

            ServerSentEvent? message;
            try
            {
                message = await reader.ReadAsync(quiet.Token);
            }
            catch (OperationCanceledException) when (!deadline.IsCancellationRequested)
            {
                return items;
            }

            if (message is null)
            {
                Assert.Fail($"live stream of {device} ended after {items.Count} of {expected} items");
            }

            if (message.Event is "summary" or "alert")
            {
                using var data = JsonDocument.Parse(message.Data);
                var body = data.RootElement.GetProperty(message.Event);
                items.Add(new ItemEvent(
                    message.Event,
                    body.GetProperty("itemId").GetString()!,
                    body.GetProperty("seq").GetInt64(),
                    body.GetProperty("kind").GetString()!,
                    message.Event == "summary" ? body.GetProperty("count").GetInt64() : 0,
                    message.Event == "alert" && body.GetProperty("readingSeq").ValueKind == JsonValueKind.Number ? body.GetProperty("readingSeq").GetInt64() : 0));
            }
        }
    }
}
