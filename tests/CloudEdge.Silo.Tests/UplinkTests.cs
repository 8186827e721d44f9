using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using CloudEdge.Silo.Auth;

namespace CloudEdge.Silo.Tests;

/// <summary>POST /api/v1/gateways/{id}/uplink over real HTTP: exactly-once by seq, encodings, limits, auth, order, tracing.</summary>
public sealed class UplinkTests(SiloFixture fixture) : IClassFixture<SiloFixture>
{
    private readonly TestSilo silo = fixture.Silo;

    private async Task<(string Gateway, string DeviceA, string DeviceB)> GatewayWithTwoDevices()
    {
        var gateway = Ids.New("gw");
        var a = Ids.New("dev");
        var b = Ids.New("dev");
        await EdgeHttp.RegisterDevice(silo, a, gateway);
        await EdgeHttp.RegisterDevice(silo, b, gateway);
        return (gateway, a, b);
    }

    private async Task<System.Text.Json.Nodes.JsonNode> Device(string deviceId) =>
        (await silo.As("ops", Roles.Admin).Get($"/api/v1/devices/{deviceId}")).AssertStatus(HttpStatusCode.OK);

    private object[] Batch(string gateway, string a, string b, DateTimeOffset now) =>
    [
        EdgeHttp.Summary(gateway, a, 1, now.AddMinutes(-3), 20),
        EdgeHttp.Summary(gateway, b, 1, now.AddMinutes(-3), 30),
        EdgeHttp.Alert(gateway, a, 2, now.AddMinutes(-2.5)),
        EdgeHttp.Summary(gateway, a, 3, now.AddMinutes(-2), 21),
        EdgeHttp.Alert(gateway, b, 2, now.AddMinutes(-1.5), "temperature"),
        EdgeHttp.Summary(gateway, a, 4, now.AddMinutes(-1), 22),
    ];

    [Fact]
    public async Task A_batch_resent_after_it_was_applied_is_all_duplicates_and_changes_nothing()
    {
        var (gateway, a, b) = await GatewayWithTwoDevices();
        var client = silo.Gateway(gateway);
        var batch = Batch(gateway, a, b, DateTimeOffset.UtcNow);

        var first = (await client.Uplink(gateway, batch)).AssertStatus(HttpStatusCode.OK);
        Assert.All(EdgeHttp.Statuses(first), s => Assert.Equal("applied", s));
        Assert.Equal($"{gateway}:{a}:1", (string?)first["results"]![0]!["id"]);
        var deviceA = await Device(a);
        var deviceB = await Device(b);

        var again = (await client.Uplink(gateway, batch)).AssertStatus(HttpStatusCode.OK);
        Assert.All(EdgeHttp.Statuses(again), s => Assert.Equal("duplicate", s));

        var afterA = await Device(a);
        Assert.Equal(1, (long)afterA["alerts"]!["total"]!);
        Assert.Equal(deviceA["alerts"]!.ToJsonString(), afterA["alerts"]!.ToJsonString());
        Assert.Equal(deviceA["latestSummary"]!.ToJsonString(), afterA["latestSummary"]!.ToJsonString());
        Assert.Equal(4, (long)afterA["highestSeq"]![gateway]!);
        Assert.Equal(deviceB["alerts"]!.ToJsonString(), (await Device(b))["alerts"]!.ToJsonString());

        var health = (await client.Get($"/api/v1/gateways/{gateway}")).AssertStatus(HttpStatusCode.OK)["health"]!;
        Assert.Equal(2, (long)health["uplinks"]!);
        Assert.Equal(6, (long)health["applied"]!);
        Assert.Equal(6, (long)health["duplicates"]!);
        Assert.Equal(0, (long)health["rejected"]!);
    }

    [Fact]
    public async Task A_partially_applied_batch_resent_applies_only_the_rest()
    {
        var (gateway, a, b) = await GatewayWithTwoDevices();
        var client = silo.Gateway(gateway);
        var batch = Batch(gateway, a, b, DateTimeOffset.UtcNow);

        // The first attempt got through the first three items before the connection dropped.
        (await client.Uplink(gateway, batch[..3])).AssertStatus(HttpStatusCode.OK);
        var resent = (await client.Uplink(gateway, batch)).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(["duplicate", "duplicate", "duplicate", "applied", "applied", "applied"], EdgeHttp.Statuses(resent));

        var deviceA = await Device(a);
        Assert.Equal(1, (long)deviceA["alerts"]!["total"]!);
        Assert.Equal($"{gateway}:{a}:4", (string?)deviceA["latestSummary"]!["itemId"]);
        Assert.Equal(22, (double)deviceA["latestSummary"]!["mean"]!);
        var deviceB = await Device(b);
        Assert.Equal(1, (long)deviceB["alerts"]!["byKind"]!["temperature"]!);
    }

    [Fact]
    public async Task The_same_batch_posted_twice_at_once_is_applied_once()
    {
        var (gateway, a, b) = await GatewayWithTwoDevices();
        var batch = Batch(gateway, a, b, DateTimeOffset.UtcNow);

        var posts = await Task.WhenAll(silo.Gateway(gateway).Uplink(gateway, batch), silo.Gateway(gateway).Uplink(gateway, batch));
        var first = EdgeHttp.Statuses(posts[0].AssertStatus(HttpStatusCode.OK));
        var second = EdgeHttp.Statuses(posts[1].AssertStatus(HttpStatusCode.OK));
        for (var i = 0; i < batch.Length; i++)
        {
            Assert.Equal(["applied", "duplicate"], new[] { first[i], second[i] }.Order(StringComparer.Ordinal));
        }

        Assert.Equal(1, (long)(await Device(a))["alerts"]!["total"]!);
        Assert.Equal(1, (long)(await Device(b))["alerts"]!["total"]!);
    }

    [Fact]
    public async Task Exactly_once_survives_a_silo_restart()
    {
        var directory = TestSilo.NewDataDirectory();
        try
        {
            string gateway, a, b;
            object[] batch;
            await using (var first = await TestSilo.StartAsync(directory))
            {
                gateway = Ids.New("gw");
                a = Ids.New("dev");
                b = Ids.New("dev");
                await EdgeHttp.RegisterDevice(first, a, gateway);
                await EdgeHttp.RegisterDevice(first, b, gateway);
                batch = Batch(gateway, a, b, DateTimeOffset.UtcNow);
                (await first.Gateway(gateway).Uplink(gateway, batch[..4])).AssertStatus(HttpStatusCode.OK);
            }

            await using var second = await TestSilo.StartAsync(directory);
            var resent = (await second.Gateway(gateway).Uplink(gateway, batch)).AssertStatus(HttpStatusCode.OK);
            Assert.Equal(["duplicate", "duplicate", "duplicate", "duplicate", "applied", "applied"], EdgeHttp.Statuses(resent));
            var deviceA = (await second.As("ops", Roles.Admin).Get($"/api/v1/devices/{a}")).AssertStatus(HttpStatusCode.OK);
            Assert.Equal(1, (long)deviceA["alerts"]!["total"]!);
            Assert.Equal(4, (long)deviceA["highestSeq"]![gateway]!);
        }
        finally
        {
            TestSilo.DeleteDirectory(directory);
        }
    }

    [Fact]
    public async Task Gzip_and_identity_bodies_are_accepted_other_encodings_are_not()
    {
        var (gateway, a, _) = await GatewayWithTwoDevices();
        var client = silo.Gateway(gateway);
        var now = DateTimeOffset.UtcNow;

        var gzip = (await client.UplinkRaw(gateway, EdgeHttp.Gzip(EdgeHttp.Body(EdgeHttp.Summary(gateway, a, 1, now, 20))), "gzip")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(["applied"], EdgeHttp.Statuses(gzip));
        var identity = (await client.UplinkRaw(gateway, EdgeHttp.Body(EdgeHttp.Summary(gateway, a, 2, now, 21)), "identity")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(["applied"], EdgeHttp.Statuses(identity));
        var plain = (await client.UplinkRaw(gateway, EdgeHttp.Body(EdgeHttp.Summary(gateway, a, 3, now, 22)))).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(["applied"], EdgeHttp.Statuses(plain));

        (await client.UplinkRaw(gateway, EdgeHttp.Body(EdgeHttp.Summary(gateway, a, 4, now, 23)), "br"))
            .AssertStatus(HttpStatusCode.UnsupportedMediaType, "unsupported_encoding");
        (await client.UplinkRaw(gateway, EdgeHttp.Body(EdgeHttp.Summary(gateway, a, 4, now, 23)), "gzip"))
            .AssertStatus(HttpStatusCode.BadRequest, "malformed_request");
        (await client.UplinkRaw(gateway, EdgeHttp.Body(EdgeHttp.Summary(gateway, a, 4, now, 23)), contentType: "text/plain"))
            .AssertStatus(HttpStatusCode.UnsupportedMediaType, "unsupported_media_type");
        Assert.Equal(3, (long)(await Device(a))["highestSeq"]![gateway]!);
    }

    [Fact]
    public async Task Malformed_and_oversized_bodies_are_refused_as_a_whole()
    {
        var (gateway, a, _) = await GatewayWithTwoDevices();
        var client = silo.Gateway(gateway);

        (await client.UplinkRaw(gateway, Encoding.UTF8.GetBytes("{ \"items\": [ oops"))).AssertStatus(HttpStatusCode.BadRequest, "malformed_request");
        (await client.UplinkRaw(gateway, Encoding.UTF8.GetBytes("{ \"items\": 5 }"))).AssertStatus(HttpStatusCode.BadRequest, "malformed_request");
        (await client.UplinkRaw(gateway, Encoding.UTF8.GetBytes("[]"))).AssertStatus(HttpStatusCode.BadRequest, "malformed_request");

        var now = DateTimeOffset.UtcNow;
        var tooMany = Enumerable.Range(1, 1001).Select(i => EdgeHttp.Summary(gateway, a, i, now, 20)).ToArray();
        (await client.Uplink(gateway, tooMany)).AssertStatus(HttpStatusCode.RequestEntityTooLarge, "too_many_items");

        var huge = Encoding.UTF8.GetBytes("{ \"items\": [], \"padding\": \"" + new string('x', 4 * 1024 * 1024 + 1) + "\" }");
        (await client.UplinkRaw(gateway, huge)).AssertStatus(HttpStatusCode.RequestEntityTooLarge, "batch_too_large");
        // Small on the wire, too large once decompressed.
        (await client.UplinkRaw(gateway, EdgeHttp.Gzip(huge), "gzip")).AssertStatus(HttpStatusCode.RequestEntityTooLarge, "batch_too_large");

        // Nothing of the refused requests was applied.
        Assert.Null((await Device(a))["latestSummary"]);
    }

    [Fact]
    public async Task Bad_items_are_rejected_with_codes_and_the_rest_is_applied()
    {
        var (gateway, a, _) = await GatewayWithTwoDevices();
        var client = silo.Gateway(gateway);
        var now = DateTimeOffset.UtcNow;
        var unknown = Ids.New("ghost");
        var foreign = Ids.New("dev");
        await EdgeHttp.RegisterDevice(silo, foreign, Ids.New("gw-other"));

        var json = "{ \"items\": [" + string.Join(",",
            System.Text.Json.JsonSerializer.Serialize(EdgeHttp.Summary(gateway, a, 1, now, 20), new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web)),
            $"{{ \"id\": \"{gateway}:{a}:2\", \"type\": \"summary\", \"deviceId\": \"{a}\", \"seq\": \"two\" }}",
            $"{{ \"id\": \"{gateway}:{a}:3\", \"type\": \"gauge\", \"deviceId\": \"{a}\", \"seq\": 3 }}",
            $"{{ \"id\": \"{gateway}:{a}:9\", \"type\": \"alert\", \"deviceId\": \"{a}\", \"seq\": 4, \"alert\": {{ \"at\": \"{now:O}\", \"kind\": \"x\", \"value\": 1, \"score\": 1, \"threshold\": 0.5 }} }}",
            $"{{ \"id\": \"{gateway}:{a}:5\", \"type\": \"summary\", \"deviceId\": \"{a}\", \"seq\": 5, \"summary\": {{ \"kind\": \"temperature\" }} }}",
            $"{{ \"id\": \"{gateway}:{a}:6\", \"type\": \"alert\", \"deviceId\": \"{a}\", \"seq\": 6, \"traceparent\": \"not-a-trace\", \"alert\": {{ \"at\": \"{now:O}\", \"kind\": \"x\", \"value\": 1, \"score\": 1, \"threshold\": 0.5 }} }}")
            + "] }";
        var mixed = (await client.UplinkRaw(gateway, Encoding.UTF8.GetBytes(json))).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(
            ["applied", "rejected:invalid_item", "rejected:unknown_type", "rejected:invalid_item_id", "rejected:invalid_summary", "rejected:invalid_traceparent"],
            EdgeHttp.Statuses(mixed));

        var devices = (await client.Uplink(gateway,
            EdgeHttp.Summary(gateway, unknown, 1, now, 20),
            EdgeHttp.Alert(gateway, foreign, 1, now),
            EdgeHttp.Alert(gateway, a, 7, now))).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(["rejected:unknown_device", "rejected:device_of_another_gateway", "applied"], EdgeHttp.Statuses(devices));
        Assert.Equal(0, (long)(await Device(foreign))["alerts"]!["total"]!);

        var health = (await client.Get($"/api/v1/gateways/{gateway}")).AssertStatus(HttpStatusCode.OK)["health"]!;
        Assert.Equal(2, (long)health["applied"]!);
        Assert.Equal(7, (long)health["rejected"]!);
    }

    [Fact]
    public async Task A_gateway_posts_only_for_itself_and_needs_a_valid_token()
    {
        var (gateway, a, _) = await GatewayWithTwoDevices();
        var item = EdgeHttp.Summary(gateway, a, 1, DateTimeOffset.UtcNow, 20);

        (await silo.Gateway(Ids.New("gw-intruder")).Uplink(gateway, item)).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await silo.As(gateway).Uplink(gateway, item)).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await silo.Gateway(Ids.New("gw-intruder")).Get($"/api/v1/gateways/{gateway}")).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await silo.Gateway(Ids.New("gw-intruder")).Patch($"/api/v1/devices/{a}/reported", new { properties = new { firmware = "2.0" } }, "p1"))
            .AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await silo.Gateway(Ids.New("gw-intruder")).Post($"/api/v1/devices/{a}/connection", new { online = false }, "c1"))
            .AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await silo.Gateway(gateway).Patch($"/api/v1/devices/{a}/reported", new { properties = new { firmware = "2.0" } }, "p1"))
            .AssertStatus(HttpStatusCode.OK);

        var expired = TestSilo.Token(gateway, DateTimeOffset.UtcNow.AddHours(-2), DateTimeOffset.UtcNow.AddHours(-1), Roles.Gateway);
        var (response, _) = await silo.WithToken(expired).Uplink(gateway, item);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("invalid_token", Assert.Single(response.Headers.WwwAuthenticate).Parameter, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, (await silo.Anonymous().Uplink(gateway, item)).Response.StatusCode);
        Assert.Null((await Device(a))["latestSummary"]);

        // An admin may post for any gateway (replaying a dead-letter table, say).
        Assert.Equal(["applied"], EdgeHttp.Statuses((await silo.As("ops", Roles.Admin).Uplink(gateway, item)).AssertStatus(HttpStatusCode.OK)));
    }

    [Fact]
    public async Task Items_of_a_device_apply_in_seq_order()
    {
        var (gateway, a, b) = await GatewayWithTwoDevices();
        var client = silo.Gateway(gateway);
        var now = DateTimeOffset.UtcNow.AddMinutes(-4);
        var items = new List<object>();
        for (var seq = 1; seq <= 20; seq++)
        {
            items.Add(EdgeHttp.Summary(gateway, a, seq, now.AddSeconds(seq), seq));
            items.Add(seq % 4 == 0 ? EdgeHttp.Alert(gateway, b, seq, now.AddSeconds(seq)) : EdgeHttp.Summary(gateway, b, seq, now.AddSeconds(seq), -seq));
        }

        var result = (await client.Uplink(gateway, [.. items])).AssertStatus(HttpStatusCode.OK);
        Assert.All(EdgeHttp.Statuses(result), s => Assert.Equal("applied", s));
        Assert.Equal(items.Count, result["results"]!.AsArray().Count);
        var deviceA = await Device(a);
        Assert.Equal(20, (double)deviceA["latestSummary"]!["mean"]!);
        Assert.Equal(20, (long)deviceA["highestSeq"]![gateway]!);
        var deviceB = await Device(b);
        Assert.Equal(5, (long)deviceB["alerts"]!["total"]!);
        Assert.Equal(20, (long)deviceB["latestAlert"]!["seq"]!);

        // Batch order is application order: an item after a higher seq of its device is a duplicate.
        var reordered = (await client.Uplink(gateway, EdgeHttp.Summary(gateway, a, 22, now.AddSeconds(22), 22), EdgeHttp.Summary(gateway, a, 21, now.AddSeconds(21), 21)))
            .AssertStatus(HttpStatusCode.OK);
        Assert.Equal(["applied", "duplicate"], EdgeHttp.Statuses(reordered));
        // A gap (items the outbox dropped) is accepted.
        Assert.Equal(["applied"], EdgeHttp.Statuses((await client.Uplink(gateway, EdgeHttp.Summary(gateway, a, 30, now.AddSeconds(30), 30))).AssertStatus(HttpStatusCode.OK)));
        Assert.Equal(30, (long)(await Device(a))["highestSeq"]![gateway]!);
    }

    [Fact]
    public async Task Drop_reports_are_counted_once_on_the_gateway()
    {
        var (gateway, _, _) = await GatewayWithTwoDevices();
        var client = silo.Gateway(gateway);
        Assert.Equal(["applied", "applied"], EdgeHttp.Statuses((await client.Uplink(gateway, EdgeHttp.Drops(gateway, 1, 12), EdgeHttp.Drops(gateway, 2, 3))).AssertStatus(HttpStatusCode.OK)));
        Assert.Equal(["duplicate"], EdgeHttp.Statuses((await client.Uplink(gateway, EdgeHttp.Drops(gateway, 2, 3))).AssertStatus(HttpStatusCode.OK)));

        var view = (await client.Get($"/api/v1/gateways/{gateway}")).AssertStatus(HttpStatusCode.OK);
        var drops = view["health"]!["drops"]!;
        Assert.Equal(2, (long)drops["reports"]!);
        Assert.Equal(15, (long)drops["readings"]!);
        Assert.Equal("outbox_full", (string?)drops["lastReason"]);
        Assert.Equal(2, view["devices"]!.AsArray().Count);
    }

    [Fact]
    public async Task The_traceparent_header_is_continued_into_the_grain_calls()
    {
        var (gateway, a, _) = await GatewayWithTwoDevices();
        var client = silo.Gateway(gateway);
        var header = EdgeHttp.NewTraceParent(out var traceId);
        var ownContext = EdgeHttp.NewTraceParent(out var ownTraceId);
        var spans = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Microsoft.Orleans.Application",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (activity.TraceId.ToHexString() == traceId)
                {
                    spans.Add(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);

        var now = DateTimeOffset.UtcNow;
        var result = (await client.UplinkRaw(gateway, EdgeHttp.Body(EdgeHttp.Alert(gateway, a, 1, now), EdgeHttp.Alert(gateway, a, 2, now.AddSeconds(1), traceparent: ownContext)), traceparent: header))
            .AssertStatus(HttpStatusCode.OK);
        Assert.Equal(["applied", "applied"], EdgeHttp.Statuses(result));

        Assert.Contains(spans, s => s.DisplayName.EndsWith("IDeviceGrain/ApplyUplink", StringComparison.Ordinal) && s.Kind == ActivityKind.Server);
        Assert.Contains(spans, s => s.DisplayName.EndsWith("IGatewayGrain/RecordUplink", StringComparison.Ordinal));

        // The item with its own context keeps it; an item without one belongs to the request's trace.
        var latest = (await Device(a))["latestAlert"]!;
        Assert.Equal(ownTraceId, (string?)latest["traceId"]);
        (await client.UplinkRaw(gateway, EdgeHttp.Body(EdgeHttp.Alert(gateway, a, 3, now.AddSeconds(2))), traceparent: header)).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(traceId, (string?)(await Device(a))["latestAlert"]!["traceId"]);
    }
}
