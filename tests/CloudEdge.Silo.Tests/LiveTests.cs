using System.Net;
using System.Text.Json.Nodes;
using CloudEdge.Silo.Auth;

namespace CloudEdge.Silo.Tests;

/// <summary>The platform's streams reach clients as Server-Sent Events: content, traces, resume, replay and access rules.</summary>
public sealed class LiveTests(SiloFixture fixture) : IClassFixture<SiloFixture>
{
    private readonly TestSilo silo = fixture.Silo;

    private async Task<(string GatewayId, string DeviceId, string OwnerId)> Device()
    {
        var gatewayId = Ids.New("gw");
        var deviceId = Ids.New("dev");
        var ownerId = Ids.New("owner");
        await EdgeHttp.RegisterDevice(silo, deviceId, gatewayId, ownerId);
        return (gatewayId, deviceId, ownerId);
    }

    [Fact]
    public async Task An_uplink_alert_reaches_the_device_gateway_and_fleet_streams_in_the_alerts_trace()
    {
        var (gatewayId, deviceId, ownerId) = await Device();
        var admin = silo.As("ops", Roles.Admin);
        await using var device = await LiveSse.ConnectAsync(silo.As(ownerId), $"/api/v1/live/devices/{deviceId}");
        await using var gateway = await LiveSse.ConnectAsync(silo.Gateway(gatewayId), $"/api/v1/live/gateways/{gatewayId}");
        await using var alerts = await LiveSse.ConnectAsync(admin, "/api/v1/live/alerts");
        await using var status = await LiveSse.ConnectAsync(admin, "/api/v1/live/status");
        Assert.Equal(3000, device.RetryMilliseconds);

        var summaryContext = EdgeHttp.NewTraceParent(out var summaryTrace);
        var alertContext = EdgeHttp.NewTraceParent(out var alertTrace);
        var now = DateTimeOffset.UtcNow;
        var answer = await silo.Gateway(gatewayId).Uplink(gatewayId,
            EdgeHttp.Summary(gatewayId, deviceId, 1, now.AddSeconds(-2), 21.5, summaryContext),
            EdgeHttp.Alert(gatewayId, deviceId, 2, now.AddSeconds(-1), traceparent: alertContext));
        Assert.Equal(["applied", "applied"], EdgeHttp.Statuses(answer.AssertStatus(HttpStatusCode.OK)));

        foreach (var (stream, name) in new[] { (device, $"device/{deviceId}"), (gateway, $"gateway/{gatewayId}") })
        {
            var events = await stream.TakeAsync(3);
            Assert.Equal(["summary", "status", "alert"], events.Select(e => e.Event));
            Assert.All(events, e => Assert.Equal(name, e.Str("stream")));
            Assert.Equal(events.Select(e => e.Seq), events.Select(e => (long)e.Data["seq"]!));
            Assert.True(events[0].Seq < events[1].Seq && events[1].Seq < events[2].Seq);

            var summary = events[0].Data;
            Assert.Equal(summaryTrace, (string?)summary["traceId"]);
            Assert.Equal(deviceId, (string?)summary["deviceId"]);
            Assert.Equal(gatewayId, (string?)summary["gatewayId"]);
            Assert.Equal(21.5, (double)summary["summary"]!["mean"]!);
            Assert.Equal($"{gatewayId}:{deviceId}:1", (string?)summary["summary"]!["itemId"]);

            var online = events[1].Data;
            Assert.Equal("Online", (string?)online["status"]!["connection"]);
            Assert.Equal("v1", (string?)online["status"]!["modelVersion"]);

            var alert = events[2].Data;
            Assert.Equal(alertTrace, (string?)alert["traceId"]);
            Assert.StartsWith($"00-{alertTrace}-", (string?)alert["traceparent"], StringComparison.Ordinal);
            Assert.Equal("vibration", (string?)alert["alert"]!["kind"]);
            Assert.Equal($"{gatewayId}:{deviceId}:2", (string?)alert["alert"]!["itemId"]);
            Assert.True(Guid.TryParse((string?)alert["eventId"], out _));
            Assert.Equal(now.AddSeconds(-1), (DateTimeOffset)alert["at"]!);
        }

        var fleetAlert = Assert.Single(await alerts.TakeAsync(1, e => e.Str("deviceId") == deviceId));
        Assert.Equal("alert", fleetAlert.Event);
        Assert.Equal("alerts/fleet", fleetAlert.Str("stream"));
        Assert.Equal(alertTrace, fleetAlert.Str("traceId"));

        var fleetStatus = Assert.Single(await status.TakeAsync(1, e => e.Str("deviceId") == deviceId));
        Assert.Equal("status", fleetStatus.Event);
        Assert.Equal("Online", (string?)fleetStatus.Data["status"]!["connection"]);
    }

    [Fact]
    public async Task Duplicates_publish_nothing()
    {
        var (gatewayId, deviceId, ownerId) = await Device();
        var now = DateTimeOffset.UtcNow;
        var items = new[] { EdgeHttp.Summary(gatewayId, deviceId, 1, now, 20), EdgeHttp.Alert(gatewayId, deviceId, 2, now) };
        Assert.Equal(["applied", "applied"], EdgeHttp.Statuses((await silo.Gateway(gatewayId).Uplink(gatewayId, items)).AssertStatus(HttpStatusCode.OK)));
        Assert.Equal(["duplicate", "duplicate"], EdgeHttp.Statuses((await silo.Gateway(gatewayId).Uplink(gatewayId, items)).AssertStatus(HttpStatusCode.OK)));
        // A marker after the retry: everything before it in the stream is what the two uplinks published.
        (await silo.Gateway(gatewayId).Uplink(gatewayId, EdgeHttp.Summary(gatewayId, deviceId, 3, now, 30))).AssertStatus(HttpStatusCode.OK);

        await using var device = await LiveSse.ConnectAsync(silo.As(ownerId), $"/api/v1/live/devices/{deviceId}?replay=100");
        var events = await device.TakeAsync(4);
        Assert.Equal(["summary", "status", "alert", "summary"], events.Select(e => e.Event));
        Assert.Equal([1L, 2, 3, 4], events.Select(e => e.Seq));
        Assert.Equal(30.0, (double)events[3].Data["summary"]!["mean"]!);
    }

    [Fact]
    public async Task Order_changes_reach_the_users_order_stream()
    {
        var userId = Ids.New("buyer");
        var user = silo.As(userId);
        (await user.Post("/api/v1/users", new { email = $"{userId}@example.com", displayName = "Buyer" }, "reg")).AssertStatus(HttpStatusCode.Created);
        await using var orders = await LiveSse.ConnectAsync(user, $"/api/v1/live/users/{userId}/orders");

        var orderId = (string)(await user.Post("/api/v1/orders", new { lines = new[] { new { sku = "a", quantity = 2, unitPrice = 3m } } }, "c1"))
            .AssertStatus(HttpStatusCode.Created)["orderId"]!;
        (await user.Post($"/api/v1/orders/{orderId}/pay", null, "p1")).AssertStatus(HttpStatusCode.OK);
        (await silo.As("ops", Roles.Admin).Post($"/api/v1/orders/{orderId}/ship", null, "s1")).AssertStatus(HttpStatusCode.OK);
        (await user.Post($"/api/v1/orders/{orderId}/pay", null, "p1")).AssertStatus(HttpStatusCode.OK);

        var events = await orders.TakeAsync(3);
        Assert.All(events, e => Assert.Equal("order", e.Event));
        Assert.Equal(["created", "paid", "shipped"], events.Select(e => e.Str("change")));
        Assert.Equal(["Created", "Paid", "Shipped"], events.Select(e => (string?)e.Data["order"]!["status"]));
        Assert.All(events, e => Assert.Equal(orderId, (string?)e.Data["order"]!["orderId"]));
        Assert.All(events, e => Assert.Equal($"orders/{userId}", e.Str("stream")));

        // The retried pay (same Idempotency-Key) published nothing: the next event is a new change.
        (await user.Post($"/api/v1/orders/{orderId}/cancel", null, "x1")).AssertStatus(HttpStatusCode.Conflict, "illegal_transition");
        (await silo.As("ops", Roles.Admin).Post($"/api/v1/orders/{orderId}/deliver", null, "d1")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal("delivered", (await orders.TakeAsync(1))[0].Str("change"));
    }

    [Fact]
    public async Task A_client_resumes_with_Last_Event_ID_without_gap_or_duplicate()
    {
        var (gatewayId, deviceId, ownerId) = await Device();
        var owner = silo.As(ownerId);
        var start = DateTimeOffset.UtcNow;
        List<SseMessage> first;
        await using (var stream = await LiveSse.ConnectAsync(owner, $"/api/v1/live/devices/{deviceId}"))
        {
            for (var seq = 1; seq <= 5; seq++)
            {
                (await silo.Gateway(gatewayId).Uplink(gatewayId, EdgeHttp.Summary(gatewayId, deviceId, seq, start.AddSeconds(seq - 10), seq))).AssertStatus(HttpStatusCode.OK);
            }

            first = await stream.TakeAsync(4);
        }

        // Disconnected mid-stream; more is published meanwhile.
        for (var seq = 6; seq <= 8; seq++)
        {
            (await silo.Gateway(gatewayId).Uplink(gatewayId, EdgeHttp.Summary(gatewayId, deviceId, seq, start.AddSeconds(seq - 10), seq))).AssertStatus(HttpStatusCode.OK);
        }

        // 5 summaries + 1 status (online) = 6 events, then 3 more: 9 in all.
        await using var resumed = await LiveSse.ConnectAsync(owner, $"/api/v1/live/devices/{deviceId}", lastEventId: first[^1].Id);
        var rest = await resumed.TakeAsync(9 - first.Count);
        var all = first.Concat(rest).ToList();
        Assert.Equal(Enumerable.Range(1, 9).Select(i => (long)i), all.Select(e => e.Seq));
        Assert.Equal(Enumerable.Range(1, 8).Select(i => (double)i), all.Where(e => e.Event == "summary").Select(e => (double)e.Data["summary"]!["mean"]!));

        // EventSource's first connection cannot set headers: ?lastEventId= does the same.
        await using var byQuery = await LiveSse.ConnectAsync(owner, $"/api/v1/live/devices/{deviceId}?lastEventId=7");
        Assert.Equal([8L, 9], (await byQuery.TakeAsync(2)).Select(e => e.Seq));

        // An id from beyond the stream's end (another life of the data) continues after the end, not never.
        await using var ahead = await LiveSse.ConnectAsync(owner, $"/api/v1/live/devices/{deviceId}", lastEventId: "1000");
        (await silo.Gateway(gatewayId).Uplink(gatewayId, EdgeHttp.Summary(gatewayId, deviceId, 9, start, 9))).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(10, (await ahead.TakeAsync(1))[0].Seq);
    }

    [Fact]
    public async Task Replay_sends_the_last_N_events_then_live_ones()
    {
        var (gatewayId, deviceId, ownerId) = await Device();
        var start = DateTimeOffset.UtcNow;
        for (var seq = 1; seq <= 4; seq++)
        {
            (await silo.Gateway(gatewayId).Uplink(gatewayId, EdgeHttp.Alert(gatewayId, deviceId, seq, start.AddSeconds(seq - 10)))).AssertStatus(HttpStatusCode.OK);
        }

        // Events: alert 1, status online, alerts 2-4: five in all.
        var owner = silo.As(ownerId);
        await using var replay = await LiveSse.ConnectAsync(owner, $"/api/v1/live/devices/{deviceId}?replay=3");
        await using var fromNow = await LiveSse.ConnectAsync(owner, $"/api/v1/live/devices/{deviceId}");
        (await silo.Gateway(gatewayId).Uplink(gatewayId, EdgeHttp.Alert(gatewayId, deviceId, 5, start))).AssertStatus(HttpStatusCode.OK);

        Assert.Equal([3L, 4, 5, 6], (await replay.TakeAsync(4)).Select(e => e.Seq));
        var live = Assert.Single(await fromNow.TakeAsync(1));
        Assert.Equal(6, live.Seq);
        Assert.Equal($"{gatewayId}:{deviceId}:5", (string?)live.Data["alert"]!["itemId"]);

        await using var everything = await LiveSse.ConnectAsync(owner, $"/api/v1/live/devices/{deviceId}?replay=1000");
        Assert.Equal(Enumerable.Range(1, 6).Select(i => (long)i), (await everything.TakeAsync(6)).Select(e => e.Seq));

        (await Problem(owner, $"/api/v1/live/devices/{deviceId}?replay=1001")).AssertStatus(HttpStatusCode.BadRequest, "invalid_replay");
        (await Problem(owner, $"/api/v1/live/devices/{deviceId}?lastEventId=abc")).AssertStatus(HttpStatusCode.BadRequest, "invalid_last_event_id");
    }

    [Fact]
    public async Task A_query_string_token_is_accepted_on_live_routes_only()
    {
        var (gatewayId, deviceId, ownerId) = await Device();
        var token = TestSilo.Token(ownerId);
        var anonymous = silo.Anonymous();
        await using var stream = await LiveSse.ConnectAsync(anonymous, $"/api/v1/live/devices/{deviceId}?access_token={token}");
        (await silo.Gateway(gatewayId).Uplink(gatewayId, EdgeHttp.Alert(gatewayId, deviceId, 1, DateTimeOffset.UtcNow))).AssertStatus(HttpStatusCode.OK);
        Assert.Equal("alert", (await stream.TakeAsync(1))[0].Event);

        using var rest = await anonymous.GetAsync($"/api/v1/devices/{deviceId}?access_token={token}");
        Assert.Equal(HttpStatusCode.Unauthorized, rest.StatusCode);
        using var ping = await anonymous.GetAsync($"/api/v1/ping?access_token={token}");
        Assert.Equal(HttpStatusCode.Unauthorized, ping.StatusCode);
    }

    [Fact]
    public async Task Live_routes_refuse_before_the_stream_starts()
    {
        var (gatewayId, deviceId, ownerId) = await Device();
        using (var none = await LiveSse.OpenAsync(silo.Anonymous(), $"/api/v1/live/devices/{deviceId}"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        }

        var expired = TestSilo.Token(ownerId, DateTimeOffset.UtcNow.AddHours(-2), DateTimeOffset.UtcNow.AddHours(-1));
        using (var old = await LiveSse.OpenAsync(silo.Anonymous(), $"/api/v1/live/devices/{deviceId}?access_token={expired}"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, old.StatusCode);
        }

        var stranger = silo.As(Ids.New("stranger"));
        // Someone else's device answers like an unknown one: ids cannot be probed.
        (await Problem(stranger, $"/api/v1/live/devices/{deviceId}")).AssertStatus(HttpStatusCode.NotFound, "device_not_found");
        (await Problem(stranger, "/api/v1/live/alerts")).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await Problem(stranger, "/api/v1/live/status")).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await Problem(stranger, $"/api/v1/live/users/{ownerId}/orders")).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await Problem(silo.Gateway(Ids.New("gw")), $"/api/v1/live/gateways/{gatewayId}")).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await Problem(silo.As(ownerId), $"/api/v1/live/gateways/{gatewayId}")).AssertStatus(HttpStatusCode.Forbidden, "forbidden");

        var admin = silo.As("ops", Roles.Admin);
        (await Problem(admin, $"/api/v1/live/devices/{Ids.New("nope")}")).AssertStatus(HttpStatusCode.NotFound, "device_not_found");
        (await Problem(admin, $"/api/v1/live/gateways/{Ids.New("nope")}")).AssertStatus(HttpStatusCode.NotFound, "gateway_not_found");
        (await Problem(admin, $"/api/v1/live/users/{Ids.New("nope")}/orders")).AssertStatus(HttpStatusCode.NotFound, "user_not_found");
        (await Problem(admin, "/api/v1/live/devices/bad%20id")).AssertStatus(HttpStatusCode.BadRequest, "invalid_id");
    }

    [Fact]
    public async Task Admins_list_every_gateway_and_device_of_the_fleet()
    {
        var (gatewayId, deviceId, ownerId) = await Device();
        (await silo.Gateway(gatewayId).Uplink(gatewayId, EdgeHttp.Summary(gatewayId, deviceId, 1, DateTimeOffset.UtcNow, 20))).AssertStatus(HttpStatusCode.OK);
        var admin = silo.As("ops", Roles.Admin);

        var gateways = (await admin.Get("/api/v1/gateways?limit=200")).AssertStatus(HttpStatusCode.OK);
        var gateway = gateways["items"]!.AsArray().Single(g => (string?)g!["gatewayId"] == gatewayId)!;
        Assert.Equal([deviceId], gateway["devices"]!.AsArray().Select(d => (string?)d));
        Assert.Equal(1, (long)gateway["health"]!["applied"]!);

        var devices = (await admin.Get("/api/v1/devices?limit=200")).AssertStatus(HttpStatusCode.OK);
        var device = devices["items"]!.AsArray().Single(d => (string?)d!["deviceId"] == deviceId)!;
        Assert.Equal(ownerId, (string?)device["ownerId"]);
        Assert.Equal("Online", (string?)device["connection"]);
        Assert.Equal(20.0, (double)device["latestSummary"]!["mean"]!);

        (await silo.As(ownerId).Get("/api/v1/gateways")).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        var own = (await silo.As(ownerId).Get("/api/v1/devices")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal([deviceId], own["items"]!.AsArray().Select(d => (string?)d!["deviceId"]));
    }

    private static async Task<(HttpResponseMessage Response, JsonNode? Body)> Problem(HttpClient client, string path)
    {
        var response = await LiveSse.OpenAsync(client, path);
        var text = await response.Content.ReadAsStringAsync();
        return (response, text.Length == 0 ? null : JsonNode.Parse(text));
    }
}
