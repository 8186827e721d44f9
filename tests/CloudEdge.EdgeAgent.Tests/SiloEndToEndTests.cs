using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CloudEdge.EdgePipeline;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Storage;
using CloudEdge.EdgePipeline.Uplink;

namespace CloudEdge.EdgeAgent.Tests;

/// <summary>
/// The agent's pipeline and uplink against the real Silo process (docs/uplink.md as the Silo implements it):
/// exactly once across a Silo kill and restart and an agent restart.
/// </summary>
[Collection(OrtCollection.Name)]
public sealed class SiloEndToEndTests(OrtFixture ort)
{
    private const string Gateway = "gw-e2e";
    private static readonly string[] Devices = ["dev-a", "dev-b", "dev-c"];

    private static async Task FeedWindowAsync(PipelineHarness harness, long firstSeq)
    {
        for (var i = 0; i < 40; i++)
        {
            foreach (var device in Devices)
            {
                var value = i is 33 or 38 ? 12.5 : 1.2 + 0.05 * Math.Sin(i + firstSeq);
                var reading = new SensorReading(device, SensorKind.Vibration, value, harness.Time.GetUtcNow(), firstSeq + i, TelemetryPipeline.NewTraceParent(), null);
                Assert.Equal(AcceptResult.Accepted, await harness.Pipeline.AcceptAsync(reading, true, CancellationToken.None));
            }
        }
        harness.Time.Advance(TimeSpan.FromSeconds(61)); // the window closes: one summary per device
    }

    private static UplinkSender Sender(PipelineHarness harness, SiloHttp http, UplinkOptions options) =>
        new(http, harness.Outbox, options, harness.Telemetry, TimeProvider.System);

    [Fact]
    public async Task Summaries_and_alerts_reach_the_real_silo_exactly_once_across_a_silo_kill_and_an_agent_restart()
    {
        using var dir = new TempDirectory();
        var key = "edge-e2e-signing-key-" + Guid.NewGuid().ToString("N");
        var port = SiloProcess.FreePort();
        var siloData = Path.Combine(dir.Path, "silo");
        var agentData = Path.Combine(dir.Path, "agent");
        var silo = await SiloProcess.StartAsync(port, siloData, key);
        try
        {
            var admin = await SiloProcess.MintAsync(key, "admin-1", "admin");
            var gatewayToken = await SiloProcess.MintAsync(key, Gateway, "gateway");
            using (var api = SiloProcess.Client(silo.Url, admin))
            {
                using var owner = await api.PostAsJsonAsync("api/v1/users", new { userId = "admin-1", email = "ops@example.com", displayName = "Ops", requestId = Guid.NewGuid().ToString() });
                Assert.True(owner.StatusCode == HttpStatusCode.Created, await owner.Content.ReadAsStringAsync());
                foreach (var device in Devices)
                {
                    using var created = await api.PostAsJsonAsync("api/v1/devices", new { deviceId = device, gatewayId = Gateway, kind = "vibration", model = "sim", requestId = Guid.NewGuid().ToString() });
                    Assert.True(created.StatusCode == HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
                }
            }

            var time = new ManualTimeProvider(DateTimeOffset.UtcNow);
            var harness = await PipelineHarness.StartAsync(agentData, ort.Environment, time, configure: o => o.GatewayId = Gateway);
            var options = new UplinkOptions
            {
                SiloUrl = silo.Url, Token = gatewayToken, MaxBatchItems = 4, BatchDelay = TimeSpan.FromMilliseconds(10),
                RetryBaseDelay = TimeSpan.FromMilliseconds(50), RetryMaxDelay = TimeSpan.FromMilliseconds(300), MaxRetryAttempts = 2,
                OutageDelay = TimeSpan.FromMilliseconds(200), BreakDuration = TimeSpan.FromMilliseconds(500), MaxItemsPerSecond = 8,
            };
            var http = new SiloHttp(options, Gateway);
            var sender = Sender(harness, http, options);
            await sender.StartAsync(CancellationToken.None);
            await FeedWindowAsync(harness, 1);
            // Slow drain (MaxItemsPerSecond): the Silo is killed while part of the first window is still queued.
            var initial = harness.Outbox.Count();
            await Wait.UntilAsync(() => harness.Outbox.Count() < initial, "first items delivered", TimeSpan.FromSeconds(120));

            // The Silo crashes; the agent keeps producing, then restarts too (journal, outbox and sequences on disk).
            await silo.DisposeAsync();
            await FeedWindowAsync(harness, 41);
            await Wait.UntilAsync(() => harness.Outbox.Count("summary") >= Devices.Length, "second window in the outbox");
            await sender.StopAsync(CancellationToken.None);
            sender.Dispose();
            http.Dispose();
            await harness.DisposeAsync();

            harness = await PipelineHarness.StartAsync(agentData, ort.Environment, time, configure: o => o.GatewayId = Gateway);
            http = new SiloHttp(options, Gateway);
            sender = Sender(harness, http, options);
            await sender.StartAsync(CancellationToken.None);
            silo = await SiloProcess.StartAsync(port, siloData, key);
            await FeedWindowAsync(harness, 81);
            await Wait.UntilAsync(() => harness.Outbox.Count() == 0, "backlog delivered", TimeSpan.FromSeconds(120));
            await sender.StopAsync(CancellationToken.None);
            sender.Dispose();
            http.Dispose();
            Assert.Equal(0, harness.Outbox.DeadLetterCount());
            await harness.DisposeAsync();

            // Exactly once: the Silo's highest seq is the agent's last, and it counted each alert once.
            using var db = EdgeDatabase.Open(agentData);
            using var view = SiloProcess.Client(silo.Url, admin);
            foreach (var device in Devices)
            {
                using var command = db.CreateCommand();
                command.CommandText = "SELECT last FROM sequences WHERE key = $k";
                command.Parameters.AddWithValue("$k", device);
                var last = (long)command.ExecuteScalar()!;
                var state = await view.GetFromJsonAsync<JsonElement>($"api/v1/devices/{device}");
                Assert.Equal(last, state.GetProperty("highestSeq").GetProperty(Gateway).GetInt64());
                var alerts = state.GetProperty("alerts").GetProperty("total").GetInt64();
                Assert.Equal(last - 3, alerts); // every item but the three summaries is an alert
                Assert.True(alerts >= 6, $"{device}: {alerts} alerts");
                Assert.Equal("v1", state.GetProperty("latestSummary").GetProperty("modelVersion").GetString());
            }
        }
        finally
        {
            await silo.DisposeAsync();
        }
    }
}
