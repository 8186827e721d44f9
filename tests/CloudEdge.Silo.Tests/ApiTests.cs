using System.Net;
using CloudEdge.Silo.Auth;

namespace CloudEdge.Silo.Tests;

/// <summary>The REST API over real HTTP: flows, bad input, unknown ids, conflicts and idempotency.</summary>
public sealed class ApiTests(SiloFixture fixture) : IClassFixture<SiloFixture>
{
    private readonly TestSilo silo = fixture.Silo;

    private async Task<(string UserId, HttpClient Client)> RegisteredUser()
    {
        var userId = Ids.New("user");
        var client = silo.As(userId);
        (await client.Post("/api/v1/users", new { email = $"{userId}@example.com", displayName = "Api User" }, Guid.NewGuid().ToString()))
            .AssertStatus(HttpStatusCode.Created);
        return (userId, client);
    }

    private static object Lines => new { lines = new[] { new { sku = "book", quantity = 2, unitPrice = 12.5m }, new { sku = "pen", quantity = 1, unitPrice = 0.99m } } };

    [Fact]
    public async Task A_user_registers_orders_pays_and_an_admin_ships_and_delivers()
    {
        var (userId, client) = await RegisteredUser();
        var admin = silo.As("ops", Roles.Admin);

        var user = (await client.Get($"/api/v1/users/{userId}")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal($"{userId}@example.com", (string?)user["email"]);

        var create = await client.Post("/api/v1/orders", Lines, "create-1");
        var order = create.AssertStatus(HttpStatusCode.Created);
        var orderId = (string)order["orderId"]!;
        Assert.Equal($"/api/v1/orders/{orderId}", create.Response.Headers.Location?.OriginalString);
        Assert.Equal(25.99m, (decimal)order["total"]!);
        Assert.Equal("Created", (string?)order["status"]);
        Assert.Equal(userId, (string?)order["userId"]);

        Assert.Equal("Paid", (string?)(await client.Post($"/api/v1/orders/{orderId}/pay", null, "pay-1")).AssertStatus(HttpStatusCode.OK)["status"]);
        Assert.Equal("Shipped", (string?)(await admin.Post($"/api/v1/orders/{orderId}/ship", null, "ship-1")).AssertStatus(HttpStatusCode.OK)["status"]);
        var delivered = await admin.Post($"/api/v1/orders/{orderId}/deliver", new { requestId = "deliver-1" });
        Assert.Equal("Delivered", (string?)delivered.AssertStatus(HttpStatusCode.OK)["status"]);
        Assert.Equal("\"4\"", delivered.Response.Headers.ETag?.Tag);

        var mine = (await client.Get("/api/v1/orders")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(1, (int)mine["total"]!);
        Assert.Equal(orderId, (string?)mine["items"]![0]!["orderId"]);
        var theirs = (await admin.Get($"/api/v1/users/{userId}/orders")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(orderId, (string?)theirs["items"]![0]!["orderId"]);
    }

    [Fact]
    public async Task A_retried_create_with_the_same_idempotency_key_makes_one_order()
    {
        var (_, client) = await RegisteredUser();
        var first = (await client.Post("/api/v1/orders", Lines, "same-key")).AssertStatus(HttpStatusCode.Created);
        var second = (await client.Post("/api/v1/orders", Lines, "same-key")).AssertStatus(HttpStatusCode.Created);
        Assert.Equal((string?)first["orderId"], (string?)second["orderId"]);
        Assert.Equal((string?)first["createdAt"], (string?)second["createdAt"]);

        var orderId = (string)first["orderId"]!;
        var paid = (await client.Post($"/api/v1/orders/{orderId}/pay", null, "pay-key")).AssertStatus(HttpStatusCode.OK);
        var paidAgain = (await client.Post($"/api/v1/orders/{orderId}/pay", null, "pay-key")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal((long)paid["version"]!, (long)paidAgain["version"]!);

        var list = (await client.Get("/api/v1/orders")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(1, (int)list["total"]!);

        (await client.Post("/api/v1/orders", new { lines = new[] { new { sku = "other", quantity = 1, unitPrice = 1m } } }, "same-key"))
            .AssertStatus(HttpStatusCode.UnprocessableEntity, "request_id_reused");
    }

    [Fact]
    public async Task Commands_without_an_idempotency_key_are_refused()
    {
        var (_, client) = await RegisteredUser();
        (await client.Post("/api/v1/orders", Lines)).AssertStatus(HttpStatusCode.BadRequest, "idempotency_key_required");
        (await client.Post("/api/v1/orders", new { requestId = "body-key", lines = Array.Empty<object>() }, "header-key"))
            .AssertStatus(HttpStatusCode.BadRequest, "idempotency_key_mismatch");
    }

    [Fact]
    public async Task Malformed_json_and_invalid_fields_are_400_problems()
    {
        var (_, client) = await RegisteredUser();
        (await client.Post("/api/v1/orders", "{\"lines\": [", "k1")).AssertStatus(HttpStatusCode.BadRequest, "malformed_request");
        (await client.Post("/api/v1/orders", "{\"lines\": [{\"sku\": \"a\", \"quantity\": \"many\", \"unitPrice\": 1}]}", "k2"))
            .AssertStatus(HttpStatusCode.BadRequest, "malformed_request");

        var zero = (await client.Post("/api/v1/orders", new { lines = new[] { new { sku = "a", quantity = 0, unitPrice = 1m } } }, "k3"))
            .AssertStatus(HttpStatusCode.BadRequest, "invalid_quantity");
        Assert.NotNull(zero["errors"]!["lines[0].quantity"]);
        (await client.Post("/api/v1/orders", new { lines = new[] { new { sku = "a", quantity = 1, unitPrice = -1m } } }, "k4"))
            .AssertStatus(HttpStatusCode.BadRequest, "invalid_unit_price");
        (await client.Post("/api/v1/orders", new { lines = Array.Empty<object>() }, "k5")).AssertStatus(HttpStatusCode.BadRequest, "no_lines");
        (await client.Post("/api/v1/orders", new { orderId = "bad id!", lines = Array.Empty<object>() }, "k6")).AssertStatus(HttpStatusCode.BadRequest, "invalid_id");

        var user = silo.As(Ids.New("user"));
        (await user.Post("/api/v1/users", new { email = "nope", displayName = "X" }, "k7")).AssertStatus(HttpStatusCode.BadRequest, "invalid_email");
        (await user.Post("/api/v1/users", new { email = "x@example.com" }, "k8")).AssertStatus(HttpStatusCode.BadRequest, "invalid_display_name");
        (await client.Get("/api/v1/orders?limit=0")).AssertStatus(HttpStatusCode.BadRequest, "invalid_limit");

        using var text = new HttpRequestMessage(HttpMethod.Post, "/api/v1/orders") { Content = new StringContent("lines=1") };
        text.Headers.Add("Idempotency-Key", "k9");
        using var unsupported = await client.SendAsync(text);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, unsupported.StatusCode);
        Assert.Equal("application/problem+json", unsupported.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Unknown_ids_are_404_problems()
    {
        var admin = silo.As("ops", Roles.Admin);
        (await admin.Get($"/api/v1/orders/{Ids.New("ord")}")).AssertStatus(HttpStatusCode.NotFound, "order_not_found");
        (await admin.Post($"/api/v1/orders/{Ids.New("ord")}/pay", null, "p1")).AssertStatus(HttpStatusCode.NotFound, "order_not_found");
        (await admin.Get($"/api/v1/users/{Ids.New("user")}")).AssertStatus(HttpStatusCode.NotFound, "user_not_found");
        (await admin.Get($"/api/v1/devices/{Ids.New("dev")}")).AssertStatus(HttpStatusCode.NotFound, "device_not_found");
    }

    [Fact]
    public async Task Illegal_transitions_and_stale_versions_are_409_and_cross_entity_rules_422()
    {
        var (userId, client) = await RegisteredUser();
        var admin = silo.As("ops", Roles.Admin);
        var orderId = (string)(await client.Post("/api/v1/orders", Lines, "c1")).AssertStatus(HttpStatusCode.Created)["orderId"]!;

        (await admin.Post($"/api/v1/orders/{orderId}/deliver", null, "d1")).AssertStatus(HttpStatusCode.Conflict, "illegal_transition");
        (await client.Post($"/api/v1/orders/{orderId}/pay", null, "p1", ifMatch: "\"7\"")).AssertStatus(HttpStatusCode.Conflict, "version_mismatch");
        (await client.Post($"/api/v1/orders/{orderId}/pay", null, "p2", ifMatch: "\"1\"")).AssertStatus(HttpStatusCode.OK);
        (await client.Post($"/api/v1/orders/{orderId}/pay", null, "p3")).AssertStatus(HttpStatusCode.Conflict, "illegal_transition");

        var user = await client.Get($"/api/v1/users/{userId}");
        var etag = user.Response.Headers.ETag!.Tag;
        (await client.Patch($"/api/v1/users/{userId}", new { displayName = "Renamed" }, "u1", ifMatch: etag)).AssertStatus(HttpStatusCode.OK);
        (await client.Patch($"/api/v1/users/{userId}", new { displayName = "Again" }, "u2", ifMatch: etag)).AssertStatus(HttpStatusCode.Conflict, "version_mismatch");

        (await admin.Post("/api/v1/orders", new { userId = Ids.New("ghost"), lines = new[] { new { sku = "a", quantity = 1, unitPrice = 1m } } }, "g1"))
            .AssertStatus(HttpStatusCode.UnprocessableEntity, "user_not_found");
        (await admin.Post("/api/v1/devices", new { deviceId = Ids.New("dev"), ownerId = Ids.New("ghost"), gatewayId = "gw-1", kind = "sensor", model = "TH" }, "g2"))
            .AssertStatus(HttpStatusCode.UnprocessableEntity, "owner_not_found");
    }

    [Fact]
    public async Task Device_twins_are_registered_and_their_properties_set_through_the_api()
    {
        var (userId, client) = await RegisteredUser();
        var gateway = silo.As("gw-7", Roles.Gateway);
        var deviceId = Ids.New("dev");

        var device = (await client.Post("/api/v1/devices", new { deviceId, gatewayId = "gw-7", kind = "sensor", model = "TH-100" }, "r1"))
            .AssertStatus(HttpStatusCode.Created);
        Assert.Equal(userId, (string?)device["ownerId"]);
        Assert.Equal("Unknown", (string?)device["connection"]);

        var desired = (await client.Patch($"/api/v1/devices/{deviceId}/desired", new { properties = new { modelVersion = "1.4.0", samplingRateHz = 50 } }, "d1"))
            .AssertStatus(HttpStatusCode.OK);
        Assert.Equal(1, (long)desired["desired"]!["version"]!);
        Assert.Equal(50, (int)desired["desired"]!["values"]!["samplingRateHz"]!);
        Assert.Equal("1.4.0", (string?)desired["desired"]!["values"]!["modelVersion"]);

        (await client.Patch($"/api/v1/devices/{deviceId}/desired", new { properties = new { samplingRateHz = 10 }, expectedVersion = 0 }, "d2"))
            .AssertStatus(HttpStatusCode.Conflict, "version_mismatch");
        (await client.Patch($"/api/v1/devices/{deviceId}/desired", "{\"properties\": {\"9bad\": 1}}", "d3"))
            .AssertStatus(HttpStatusCode.BadRequest, "invalid_property_name");

        // Reported properties come from gateways (or admins), not from the owner.
        (await client.Patch($"/api/v1/devices/{deviceId}/reported", new { properties = new { modelVersion = "1.4.0" } }, "p0"))
            .AssertStatus(HttpStatusCode.Forbidden);
        var reported = (await gateway.Patch($"/api/v1/devices/{deviceId}/reported", new { properties = new { modelVersion = "1.4.0" } }, "p1"))
            .AssertStatus(HttpStatusCode.OK);
        Assert.Equal(1, (long)reported["reported"]!["version"]!);
        Assert.Equal("Online", (string?)reported["connection"]);

        var listed = (await client.Get("/api/v1/devices")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(deviceId, (string?)listed["items"]![0]!["deviceId"]);
    }

    [Fact]
    public async Task Admins_list_all_users_and_users_may_not()
    {
        var (userId, client) = await RegisteredUser();
        (await client.Get("/api/v1/users")).AssertStatus(HttpStatusCode.Forbidden, "forbidden");

        var admin = silo.As("ops", Roles.Admin);
        var first = (await admin.Get("/api/v1/users?limit=200")).AssertStatus(HttpStatusCode.OK);
        var total = (int)first["total"]!;
        Assert.True(total >= 1);
        var all = new List<string>();
        for (var offset = 0; offset < total; offset += 200)
        {
            var page = (await admin.Get($"/api/v1/users?offset={offset}&limit=200")).AssertStatus(HttpStatusCode.OK);
            all.AddRange(page["items"]!.AsArray().Select(u => (string)u!["userId"]!));
        }

        Assert.Contains(userId, all);
        Assert.Equal(all.Count, all.Distinct().Count());
    }

    [Fact]
    public async Task Ping_answers_without_grains()
    {
        var body = (await silo.As("anyone").Get("/api/v1/ping")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal("ok", (string?)body["status"]);
    }
}
