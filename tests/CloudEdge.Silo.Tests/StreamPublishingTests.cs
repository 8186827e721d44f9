using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json.Nodes;
using CloudEdge.Grains;
using CloudEdge.Silo.Auth;
using CloudEdge.Streaming;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Orleans.Streams;

namespace CloudEdge.Silo.Tests;

/// <summary>
/// How the grains publish (status changes on a controlled clock, gateway model changes, no event lost
/// to a crash) and how the live endpoints protect the silo (slow consumers, connections per caller).
/// </summary>
public sealed class StreamPublishingTests
{
    [Fact]
    public async Task Presence_changes_are_published_as_status_events()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var (gatewayId, deviceId) = (Ids.New("gw"), Ids.New("dev"));
        await using var silo = await TestSilo.StartAsync(settings: new Dictionary<string, string> { ["Devices:OfflineAfter"] = "00:01:00" }, services: s => s.AddSingleton<TimeProvider>(clock));
        await EdgeHttp.RegisterDevice(silo, deviceId, gatewayId);
        var admin = silo.As("ops", Roles.Admin);
        // Orleans' stream delivery runs on the host's clock too: it moves along with real time, and jumps when the test says.
        await using var running = RunAlong(clock);
        await using var status = await LiveSse.ConnectAsync(admin, "/api/v1/live/status");
        await using var device = await LiveSse.ConnectAsync(admin, $"/api/v1/live/devices/{deviceId}");

        (await silo.Gateway(gatewayId).Uplink(gatewayId, EdgeHttp.Summary(gatewayId, deviceId, 1, clock.GetUtcNow().AddSeconds(-5), 20))).AssertStatus(HttpStatusCode.OK);
        Assert.Equal("Online", (string?)(await status.TakeAsync(1))[0].Data["status"]!["connection"]);

        clock.Advance(TimeSpan.FromSeconds(70));
        var offline = (await status.TakeAsync(1))[0];
        Assert.Equal(deviceId, offline.Str("deviceId"));
        Assert.Equal(gatewayId, offline.Str("gatewayId"));
        Assert.Equal("Offline", (string?)offline.Data["status"]!["connection"]);
        Assert.Equal(["summary", "status", "status"], (await device.TakeAsync(3)).Select(e => e.Event));

        // An admin marking it online again is a change too.
        (await admin.Post($"/api/v1/devices/{deviceId}/connection", new { online = true }, "on-1")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal("Online", (string?)(await status.TakeAsync(1))[0].Data["status"]!["connection"]);
    }

    [Fact]
    public async Task A_gateways_reported_model_is_published_on_its_stream_and_the_fleet_status()
    {
        await using var silo = await TestSilo.StartAsync();
        var gatewayId = Ids.New("gw");
        await EdgeHttp.RegisterDevice(silo, Ids.New("dev"), gatewayId);
        var admin = silo.As("ops", Roles.Admin);
        await using var gatewayStream = await LiveSse.ConnectAsync(silo.Gateway(gatewayId), $"/api/v1/live/gateways/{gatewayId}");
        await using var status = await LiveSse.ConnectAsync(admin, "/api/v1/live/status");

        (await silo.Gateway(gatewayId).Send(HttpMethod.Put, $"/api/v1/gateways/{gatewayId}/reported", new { model = new { name = "anomaly", version = "v2", status = "running" } }))
            .AssertStatus(HttpStatusCode.OK);
        foreach (var stream in new[] { gatewayStream, status })
        {
            var change = (await stream.TakeAsync(1))[0];
            Assert.Equal("status", change.Event);
            Assert.Null(change.Str("deviceId"));
            Assert.Equal(gatewayId, change.Str("gatewayId"));
            Assert.Equal("v2", (string?)change.Data["status"]!["modelVersion"]);
        }
    }

    [Fact]
    public async Task Events_stored_but_not_published_before_a_crash_are_published_when_the_grain_activates()
    {
        var directory = TestSilo.NewDataDirectory();
        try
        {
            string gatewayId = Ids.New("gw"), deviceId = Ids.New("dev");
            DeviceState crashed;
            await using (var first = await TestSilo.StartAsync(directory))
            {
                await EdgeHttp.RegisterDevice(first, deviceId, gatewayId);
                (await first.Gateway(gatewayId).Uplink(gatewayId, EdgeHttp.Alert(gatewayId, deviceId, 1, DateTimeOffset.UtcNow))).AssertStatus(HttpStatusCode.OK);
                // The state write carried the events with the alert; they leave the stored state only with a later write.
                crashed = await DeviceRecord(first, deviceId);
                var outbox = crashed.Outbox;
                Assert.Equal(2, outbox.Count);
                Assert.Equal([$"device/{deviceId}", $"gateway/{gatewayId}", "alerts/fleet"], outbox[0].Streams);
            }

            await using var second = await TestSilo.StartAsync(directory);
            // The crash: the silo stopped after the write and before the events left the state.
            await WriteDeviceRecord(second, deviceId, crashed);

            var admin = second.As("ops", Roles.Admin);
            Assert.Equal(1, (long)(await admin.Get($"/api/v1/devices/{deviceId}")).AssertStatus(HttpStatusCode.OK)["alerts"]!["total"]!);
            await using var stream = await LiveSse.ConnectAsync(admin, $"/api/v1/live/devices/{deviceId}?replay=100");
            var events = await stream.TakeAsync(4);
            // Published once before the crash, again at activation: the repeat carries the same item id.
            Assert.Equal(["alert", "status", "alert", "status"], events.Select(e => e.Event));
            Assert.Equal((string?)events[0].Data["alert"]!["itemId"], (string?)events[2].Data["alert"]!["itemId"]);
            Assert.Equal(events[0].Str("traceId"), events[2].Str("traceId"));
            await Wait.UntilAsync(async () => (await DeviceRecord(second, deviceId)).Outbox.Count == 0, "the republished events leave the stored state");
        }
        finally
        {
            TestSilo.DeleteDirectory(directory);
        }
    }

    [Fact]
    public async Task A_publish_that_fails_after_the_write_answers_the_caller_and_is_retried_once_per_stream()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var (gatewayId, deviceId) = (Ids.New("gw"), Ids.New("dev"));
        await using var silo = await TestSilo.StartAsync(settings: new Dictionary<string, string> { ["Devices:OfflineAfter"] = "1.00:00:00" }, services: s => s.AddSingleton<TimeProvider>(clock));
        await EdgeHttp.RegisterDevice(silo, deviceId, gatewayId);
        var failures = 0L;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "cloudedge.grains.outbox.publish_failures")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref failures, value));
        listener.Start();

        // The store's inserts fail (a real PostgreSQL error) for the fleet's alerts.
        await StreamsSql(silo.DataDirectory, RefuseInserts("refuse_alerts", "NEW.stream_namespace = 'alerts'"));
        var gateway = silo.Gateway(gatewayId);
        (await gateway.Uplink(gatewayId, EdgeHttp.Alert(gatewayId, deviceId, 1, clock.GetUtcNow()))).AssertStatus(HttpStatusCode.OK);
        (await gateway.Uplink(gatewayId, EdgeHttp.Summary(gatewayId, deviceId, 2, clock.GetUtcNow(), 20))).AssertStatus(HttpStatusCode.OK);
        var twin = (await silo.As("ops", Roles.Admin).Get($"/api/v1/devices/{deviceId}")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(1, (long)twin["alerts"]!["total"]!);
        Assert.NotNull(twin["latestSummary"]);
        Assert.True(Interlocked.Read(ref failures) >= 2, $"{failures} failures counted");
        Assert.Empty(await StreamEvents(silo, PlatformStreams.AlertsStream));
        // The alert stays stored for the refused stream; events whose commit nothing refused may be out already.
        var waiting = Assert.Single((await DeviceRecord(silo, deviceId)).Outbox, e => e.Item!.Type == "alert");
        Assert.DoesNotContain("alerts/fleet", waiting.Published);

        // The store recovers; the retry timer (1 s, on the silo's clock) publishes what is left.
        await StreamsSql(silo.DataDirectory, DropRefusal("refuse_alerts"));
        clock.Advance(StreamOutboxRetry);
        await Wait.UntilAsync(async () => (await DeviceRecord(silo, deviceId)).Outbox.Count == 0, "the retried events leave the stored state");
        Assert.Equal(["alert:1"], await StreamEvents(silo, PlatformStreams.AlertsStream));
        Assert.Equal(["status:Online"], await StreamEvents(silo, PlatformStreams.StatusStream));
        Assert.Equal(["alert:1", "status:Online", "summary:2"], await StreamEvents(silo, PlatformStreams.DeviceStream(deviceId)));
        Assert.Equal(["alert:1", "status:Online", "summary:2"], await StreamEvents(silo, PlatformStreams.GatewayStream(gatewayId)));
    }

    [Fact]
    public async Task A_grain_activates_while_the_store_fails_and_its_retry_skips_the_streams_already_reached()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var directory = TestSilo.NewDataDirectory();
        try
        {
            string gatewayId = Ids.New("gw"), deviceId = Ids.New("dev");
            var settings = new Dictionary<string, string> { ["Devices:OfflineAfter"] = "1.00:00:00" };
            DeviceState crashed;
            await using (var first = await TestSilo.StartAsync(directory, settings, s => s.AddSingleton<TimeProvider>(clock)))
            {
                await EdgeHttp.RegisterDevice(first, deviceId, gatewayId);
                (await first.Gateway(gatewayId).Uplink(gatewayId, EdgeHttp.Alert(gatewayId, deviceId, 1, clock.GetUtcNow()))).AssertStatus(HttpStatusCode.OK);
                crashed = await DeviceRecord(first, deviceId);
            }

            // The crash: the events reached the device's stream, then the silo stopped before the other streams.
            foreach (var stored in crashed.Outbox)
            {
                stored.Published = [$"device/{deviceId}"];
            }

            await using var second = await TestSilo.StartAsync(directory, settings, s => s.AddSingleton<TimeProvider>(clock));
            await WriteDeviceRecord(second, deviceId, crashed);
            await StreamsSql(directory, RefuseInserts("refuse_all", "true"));
            var twin = (await second.As("ops", Roles.Admin).Get($"/api/v1/devices/{deviceId}")).AssertStatus(HttpStatusCode.OK);
            Assert.Equal(1, (long)twin["alerts"]!["total"]!);
            Assert.Equal(["alert:1"], await StreamEvents(second, PlatformStreams.AlertsStream));

            await StreamsSql(directory, DropRefusal("refuse_all"));
            clock.Advance(StreamOutboxRetry);
            await Wait.UntilAsync(async () => (await DeviceRecord(second, deviceId)).Outbox.Count == 0, "the retried events leave the stored state");
            // Once on the stream the crash record says they reached, twice (before and after the crash) on the others.
            Assert.Equal(["alert:1", "status:Online"], await StreamEvents(second, PlatformStreams.DeviceStream(deviceId)));
            Assert.Equal(["alert:1", "status:Online", "alert:1", "status:Online"], await StreamEvents(second, PlatformStreams.GatewayStream(gatewayId)));
            Assert.Equal(["alert:1", "alert:1"], await StreamEvents(second, PlatformStreams.AlertsStream));
        }
        finally
        {
            TestSilo.DeleteDirectory(directory);
        }
    }

    [Fact]
    public async Task A_slow_client_is_disconnected_while_a_fast_one_on_the_same_stream_gets_everything()
    {
        await using var silo = await TestSilo.StartAsync(settings: new Dictionary<string, string>
        {
            ["Live:ClientBufferEvents"] = "32",
            ["Live:SlowClientGrace"] = "00:00:01",
        });
        var disconnects = new List<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "cloudedge.silo.live.disconnects")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            lock (disconnects)
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == "reason")
                    {
                        disconnects.Add((string)tag.Value!);
                    }
                }
            }
        });
        listener.Start();

        var gatewayId = Ids.New("gw");
        var deviceId = Ids.New("dev");
        await EdgeHttp.RegisterDevice(silo, deviceId, gatewayId);
        var admin = silo.As("ops", Roles.Admin);
        await using var slow = await LiveSse.ConnectAsync(admin, $"/api/v1/live/devices/{deviceId}");
        await using var fast = await LiveSse.ConnectAsync(admin, $"/api/v1/live/devices/{deviceId}");

        // Large events straight onto the stream (the SSE layer does not care who publishes), until the slow
        // client, which never reads, fills its socket and its buffer.
        var stream = silo.App.Services.GetRequiredService<IClusterClient>().GetStreamProvider(PlatformStreams.Provider).GetStream<DeviceEvent>(PlatformStreams.DeviceStream(deviceId));
        var links = Enumerable.Range(0, DeviceRules.MaxLinks).Select(_ => EdgeHttp.NewTraceParent(out var _)).ToArray();
        var published = 0L;
        var received = new List<SseMessage>();
        var fastReader = Task.Run(async () =>
        {
            while (await fast.NextAsync() is { } message)
            {
                lock (received)
                {
                    received.Add(message);
                }
            }
        });
        await Wait.UntilAsync(async () =>
        {
            if (Count(disconnects, "slow_consumer") > 0)
            {
                return true;
            }

            var batch = Enumerable.Range(0, 200).Select(i => new DeviceEvent("summary", deviceId, gatewayId, DateTimeOffset.UtcNow,
                new DeviceSummary($"{gatewayId}:{deviceId}:{published + i + 1}", gatewayId, published + i + 1, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow,
                    "temperature", 600, 1, 2, 1.5, 0.1, 0.1, 0, "v1", null, links), null, null));
            var events = batch.ToList();
            await stream.OnNextBatchAsync(events);
            published += events.Count;
            return false;
        }, "the slow client is disconnected");

        // The fast client gets every event, in order, with no gap.
        await Wait.UntilAsync(() => { lock (received) { return received.Count >= published; } }, $"the fast client receives all {published} events");
        lock (received)
        {
            Assert.Equal(Enumerable.Range(1, (int)published).Select(i => (long)i), received.Take((int)published).Select(e => e.Seq));
        }

        // The slow client's stream ends; what it got is contiguous, and it resumes from its last id losing nothing.
        var got = await slow.ReadToEndAsync();
        Assert.Equal(Enumerable.Range(1, got.Count).Select(i => (long)i), got.Where(e => e.Event != "error").Select(e => e.Seq));
        if (got.LastOrDefault() is { Event: "error" } error)
        {
            Assert.Equal("slow_consumer", error.Str("code"));
        }

        var lastSeen = got.Where(e => e.Event != "error").Select(e => e.Seq).DefaultIfEmpty(0).Max();
        await using var resumed = await LiveSse.ConnectAsync(admin, $"/api/v1/live/devices/{deviceId}", lastEventId: lastSeen.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(lastSeen + 1, (await resumed.TakeAsync(1))[0].Seq);
        Assert.True(Count(disconnects, "slow_consumer") == 1, string.Join(", ", disconnects));
    }

    [Fact]
    public async Task A_caller_over_the_connection_limit_gets_429_and_idle_streams_get_keepalives()
    {
        await using var silo = await TestSilo.StartAsync(settings: new Dictionary<string, string>
        {
            ["Live:MaxConnectionsPerCaller"] = "2",
            ["Live:KeepAliveInterval"] = "00:00:00.200",
        });
        var admin = silo.As("ops", Roles.Admin);
        await using var one = await LiveSse.ConnectAsync(admin, "/api/v1/live/alerts");
        await one.WaitForCommentAsync();
        await using (var two = await LiveSse.ConnectAsync(admin, "/api/v1/live/status"))
        {
            using var third = await LiveSse.OpenAsync(admin, "/api/v1/live/alerts");
            Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
            var problem = JsonNode.Parse(await third.Content.ReadAsStringAsync())!;
            Assert.Equal("too_many_streams", (string?)problem["code"]);

            // Another caller has its own allowance.
            await using var other = await LiveSse.ConnectAsync(silo.As("ops2", Roles.Admin), "/api/v1/live/alerts");
        }

        // Closing a connection frees a place (the silo notices the client left).
        await Wait.UntilAsync(async () =>
        {
            using var again = await LiveSse.OpenAsync(admin, "/api/v1/live/status");
            return again.StatusCode == HttpStatusCode.OK;
        }, "a place is free again after a connection closed");
    }

    /// <summary>Advances the clock by the real time that passes (in 10 ms steps) until disposed.</summary>
    private static AsyncDisposableTask RunAlong(FakeTimeProvider clock)
    {
        var stop = new CancellationTokenSource();
        var task = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(10);
                clock.Advance(TimeSpan.FromMilliseconds(10));
            }
        });
        return new AsyncDisposableTask(stop, task);
    }

    private sealed class AsyncDisposableTask(CancellationTokenSource stop, Task task) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            await task;
            stop.Dispose();
        }
    }

    private static int Count(List<string> reasons, string reason)
    {
        lock (reasons)
        {
            return reasons.Count(r => r == reason);
        }
    }

    /// <summary>Beyond any retry delay of the outbox (1 s doubling to 1 min).</summary>
    private static readonly TimeSpan StreamOutboxRetry = TimeSpan.FromSeconds(61);

    /// <summary>A trigger that makes PostgreSQL refuse the stream provider's inserts matching <paramref name="condition"/> (NEW.* columns).</summary>
    private static string RefuseInserts(string name, string condition) => $"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the stream store refuses writes'; END $$;
        CREATE TRIGGER {name} BEFORE INSERT ON cloudedge_stream_events FOR EACH ROW WHEN ({condition}) EXECUTE FUNCTION {name}();
        """;

    private static string DropRefusal(string name) => $"DROP TRIGGER {name} ON cloudedge_stream_events; DROP FUNCTION {name}();";

    private static async Task StreamsSql(string directory, string sql)
    {
        await using var connection = new NpgsqlConnection(await TestSilo.DatabaseOf(directory));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>A stream's events in order, from the provider's log, each as its type and what identifies its content (an item's seq, a status's connection).</summary>
    private static async Task<List<string>> StreamEvents(TestSilo silo, StreamId stream)
    {
        var log = silo.App.Services.GetRequiredKeyedService<IStreamLog>(PlatformStreams.Provider);
        var events = await log.ReadAsync<DeviceEvent>(stream, 0, 10_000, CancellationToken.None);
        return [.. events.Select(e => e.Item.Type + ":" + e.Item.Type switch
        {
            "status" => e.Item.Status!.Connection.ToString(),
            "alert" => e.Item.Alert!.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _ => e.Item.Summary!.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture),
        })];
    }

    private static async Task<DeviceState> DeviceRecord(TestSilo silo, string deviceId) =>
        (await silo.ReadStateAsync<DeviceState>("device", "device", deviceId)).State!;

    /// <summary>Replaces the stored device state (before the grain activates on this silo), as a crash would have left it.</summary>
    private static async Task WriteDeviceRecord(TestSilo silo, string deviceId, DeviceState state)
    {
        var stored = await silo.ReadStateAsync<DeviceState>("device", "device", deviceId);
        stored.State = state;
        await silo.WriteStateAsync("device", "device", deviceId, stored);
    }
}
