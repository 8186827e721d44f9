using System.Net;
using System.Text;
using CloudEdge.Silo.Auth;

namespace CloudEdge.Silo.Tests;

/// <summary>Bearer tokens on every /api/v1 route: missing, expired, forged, wrong role, someone else's data.</summary>
public sealed class AuthTests(SiloFixture fixture) : IClassFixture<SiloFixture>
{
    private readonly TestSilo silo = fixture.Silo;

    private async Task<(string UserId, HttpClient Client, string OrderId)> UserWithOrder()
    {
        var userId = Ids.New("user");
        var client = silo.As(userId);
        (await client.Post("/api/v1/users", new { email = $"{userId}@example.com", displayName = "Owner" }, "reg")).AssertStatus(HttpStatusCode.Created);
        var order = (await client.Post("/api/v1/orders", new { lines = new[] { new { sku = "a", quantity = 1, unitPrice = 5m } } }, "ord"))
            .AssertStatus(HttpStatusCode.Created);
        return (userId, client, (string)order["orderId"]!);
    }

    [Fact]
    public async Task The_Orleans_dashboard_is_for_admins_only()
    {
        using var anonymous = await silo.Anonymous().GetAsync("/orleans/");
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        using var user = await silo.As(Ids.New("user")).GetAsync("/orleans/");
        Assert.Equal(HttpStatusCode.Forbidden, user.StatusCode);
        using var gateway = await silo.As(Ids.New("gw"), Roles.Gateway).GetAsync("/orleans/");
        Assert.Equal(HttpStatusCode.Forbidden, gateway.StatusCode);

        using var admin = await silo.As("ops", Roles.Admin).GetAsync("/orleans/");
        Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
        Assert.Contains("text/html", admin.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_request_without_a_token_is_401_with_a_bearer_challenge()
    {
        var (response, _) = await silo.Anonymous().Get("/api/v1/ping");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Bearer", Assert.Single(response.Headers.WwwAuthenticate).Scheme);
    }

    [Fact]
    public async Task An_expired_token_is_401_invalid_token()
    {
        var expired = TestSilo.Token("alice", DateTimeOffset.UtcNow.AddHours(-2), DateTimeOffset.UtcNow.AddHours(-1));
        var (response, _) = await silo.WithToken(expired).Get("/api/v1/ping");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var challenge = Assert.Single(response.Headers.WwwAuthenticate);
        Assert.Equal("Bearer", challenge.Scheme);
        Assert.Contains("invalid_token", challenge.Parameter, StringComparison.Ordinal);
        Assert.Contains("expired", challenge.Parameter, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_token_signed_with_another_key_or_for_another_audience_is_401()
    {
        var now = DateTimeOffset.UtcNow;
        var forged = TokenIssuer.Mint(Encoding.UTF8.GetBytes("some-other-key-that-is-long-enough-0123456789"), TestSilo.Issuer, TestSilo.Audience, "alice", [Roles.Admin], now, now.AddMinutes(5));
        var (response, _) = await silo.WithToken(forged).Get("/api/v1/ping");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("invalid_token", Assert.Single(response.Headers.WwwAuthenticate).Parameter, StringComparison.Ordinal);

        var otherAudience = TokenIssuer.Mint(Encoding.UTF8.GetBytes(TestSilo.SigningKey), TestSilo.Issuer, "someone-else", "alice", [], now, now.AddMinutes(5));
        Assert.Equal(HttpStatusCode.Unauthorized, (await silo.WithToken(otherAudience).Get("/api/v1/ping")).Response.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await silo.WithToken("not.a.jwt").Get("/api/v1/ping")).Response.StatusCode);
    }

    [Fact]
    public async Task A_user_cannot_ship_orders_that_is_the_admin_role()
    {
        var (_, client, orderId) = await UserWithOrder();
        (await client.Post($"/api/v1/orders/{orderId}/pay", null, "pay")).AssertStatus(HttpStatusCode.OK);
        (await client.Post($"/api/v1/orders/{orderId}/ship", null, "ship")).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await silo.As("ops", Roles.Admin).Post($"/api/v1/orders/{orderId}/ship", null, "ship")).AssertStatus(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_user_cannot_see_or_change_another_users_orders_devices_or_profile()
    {
        var (ownerId, _, orderId) = await UserWithOrder();
        var mallory = silo.As(Ids.New("mallory"));
        (await mallory.Get($"/api/v1/orders/{orderId}")).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await mallory.Post($"/api/v1/orders/{orderId}/cancel", null, "x")).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await mallory.Get($"/api/v1/users/{ownerId}")).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await mallory.Get($"/api/v1/orders?userId={ownerId}")).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await mallory.Post("/api/v1/orders", new { userId = ownerId, lines = new[] { new { sku = "a", quantity = 1, unitPrice = 1m } } }, "y"))
            .AssertStatus(HttpStatusCode.Forbidden, "forbidden");

        var admin = silo.As("ops", Roles.Admin);
        (await admin.Get($"/api/v1/orders/{orderId}")).AssertStatus(HttpStatusCode.OK);

        // Someone else's device and a device that does not exist get the same answer, so ids cannot be probed.
        var deviceId = Ids.New("dev");
        (await silo.As(ownerId).Post("/api/v1/devices", new { deviceId, gatewayId = Ids.New("gw"), kind = "temperature", model = "t1" }, "dev")).AssertStatus(HttpStatusCode.Created);
        var hidden = (await mallory.Get($"/api/v1/devices/{deviceId}")).AssertStatus(HttpStatusCode.NotFound, "device_not_found");
        var unknownId = Ids.New("dev");
        var unknown = (await mallory.Get($"/api/v1/devices/{unknownId}")).AssertStatus(HttpStatusCode.NotFound, "device_not_found");
        Assert.Equal(((string?)unknown["detail"])!.Replace(unknownId, "{id}", StringComparison.Ordinal), ((string?)hidden["detail"])!.Replace(deviceId, "{id}", StringComparison.Ordinal));
        (await mallory.Send(HttpMethod.Patch, $"/api/v1/devices/{deviceId}/desired", new { properties = new Dictionary<string, string> { ["a"] = "1" } }, "p")).AssertStatus(HttpStatusCode.NotFound, "device_not_found");
        (await admin.Get($"/api/v1/devices/{deviceId}")).AssertStatus(HttpStatusCode.OK);
        (await admin.Get($"/api/v1/orders?userId={ownerId}")).AssertStatus(HttpStatusCode.OK);
    }
}
