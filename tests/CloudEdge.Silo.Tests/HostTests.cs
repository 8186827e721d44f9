using System.Net;
using CloudEdge.Grains;
using CloudEdge.Silo.Auth;
using Microsoft.Extensions.Options;

namespace CloudEdge.Silo.Tests;

/// <summary>Host concerns, each with its own silo: OpenAPI, health, rate limits, restarts, startup checks, the token command.</summary>
public sealed class HostTests
{
    [Fact]
    public async Task The_openapi_document_docs_ui_and_health_endpoints_are_served_without_a_token()
    {
        await using var silo = await TestSilo.StartAsync();
        var anonymous = silo.Anonymous();

        var document = (await anonymous.Get("/openapi/v1.json")).AssertStatus(HttpStatusCode.OK);
        Assert.StartsWith("3.", (string?)document["openapi"], StringComparison.Ordinal);
        var paths = document["paths"]!.AsObject();
        Assert.Contains("/api/v1/orders/{orderId}/pay", paths.Select(p => p.Key));
        Assert.Contains("/api/v1/devices/{deviceId}/desired", paths.Select(p => p.Key));
        Assert.Contains("/api/v1/gateways/{gatewayId}/uplink", paths.Select(p => p.Key));
        Assert.Contains("/api/v1/gateways/{gatewayId}/desired", paths.Select(p => p.Key));
        Assert.Contains("/api/v1/models/{name}/{version}", paths.Select(p => p.Key));
        Assert.Contains("/api/v1/models/blobs/{sha256}", paths.Select(p => p.Key));

        using var docs = await anonymous.GetAsync("/docs/index.html");
        Assert.Equal(HttpStatusCode.OK, docs.StatusCode);
        Assert.Contains("swagger-ui", await docs.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var live = await anonymous.GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        using var ready = await anonymous.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("Healthy", await ready.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_client_over_its_limit_gets_429_with_retry_after_and_other_clients_do_not()
    {
        await using var silo = await TestSilo.StartAsync(settings: new Dictionary<string, string>
        {
            ["RateLimiting:PermitLimit"] = "3",
            ["RateLimiting:Window"] = "00:10:00",
        });
        var alice = silo.As("alice");
        for (var i = 0; i < 3; i++)
        {
            (await alice.Get("/api/v1/ping")).AssertStatus(HttpStatusCode.OK);
        }

        var limited = await alice.Get("/api/v1/ping");
        limited.AssertStatus(HttpStatusCode.TooManyRequests, "rate_limited");
        var retryAfter = limited.Response.Headers.RetryAfter?.Delta;
        Assert.NotNull(retryAfter);
        Assert.InRange(retryAfter!.Value.TotalSeconds, 1, 600);

        (await silo.As("bob").Get("/api/v1/ping")).AssertStatus(HttpStatusCode.OK);
    }

    [Fact]
    public async Task State_survives_a_silo_restart_on_the_same_data_directory()
    {
        var directory = TestSilo.NewDataDirectory();
        try
        {
            string orderId;
            await using (var first = await TestSilo.StartAsync(directory))
            {
                var client = first.As("carol");
                (await client.Post("/api/v1/users", new { email = "carol@example.com", displayName = "Carol" }, "reg")).AssertStatus(HttpStatusCode.Created);
                orderId = (string)(await client.Post("/api/v1/orders", new { lines = new[] { new { sku = "lamp", quantity = 3, unitPrice = 19.99m } } }, "c1"))
                    .AssertStatus(HttpStatusCode.Created)["orderId"]!;
                (await client.Post($"/api/v1/orders/{orderId}/pay", null, "p1")).AssertStatus(HttpStatusCode.OK);
            }

            await using var second = await TestSilo.StartAsync(directory);
            var again = second.As("carol");
            var order = (await again.Get($"/api/v1/orders/{orderId}")).AssertStatus(HttpStatusCode.OK);
            Assert.Equal("Paid", (string?)order["status"]);
            Assert.Equal(59.97m, (decimal)order["total"]!);
            Assert.Equal(orderId, (string?)(await again.Get("/api/v1/orders")).AssertStatus(HttpStatusCode.OK)["items"]![0]!["orderId"]);

            // The processed-request log is persisted too: a late retry still gets the first answer.
            (await again.Post($"/api/v1/orders/{orderId}/pay", null, "p1")).AssertStatus(HttpStatusCode.OK);
            var view = await second.Grains.GetGrain<IOrderGrain>(orderId).Get();
            Assert.Equal(2, view.Version);
        }
        finally
        {
            TestSilo.DeleteDirectory(directory);
        }
    }

    [Theory]
    [InlineData(null)]
    [InlineData("too-short")]
    public async Task Outside_development_the_silo_refuses_to_start_without_a_strong_signing_key(string? key)
    {
        var directory = TestSilo.NewDataDirectory();
        try
        {
            var args = TestSilo.Arguments(directory, new Dictionary<string, string>
            {
                ["Auth:SigningKey"] = key ?? string.Empty,
                ["Silo:Postgres"] = await TestSilo.DatabaseOf(directory),
            });
            await using var app = SiloApplication.Build(args);
            var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
            Assert.Contains("Auth:SigningKey", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            TestSilo.DeleteDirectory(directory);
        }
    }

    [Fact]
    public async Task The_token_command_mints_a_token_the_silo_accepts()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var keyFile = Path.GetTempFileName();
        await File.WriteAllTextAsync(keyFile, TestSilo.SigningKey + "\n");
        var exit = TokenCommand.Run(["token", "--sub", "dave", "--role", Roles.Admin, "--key-file", keyFile, "--lifetime", "00:05:00"], output, error);
        Assert.True(exit == 0, error.ToString());
        var token = output.ToString().Trim();

        await using var silo = await TestSilo.StartAsync();
        (await silo.WithToken(token).Get($"/api/v1/users/{Ids.New("someone")}")).AssertStatus(HttpStatusCode.NotFound, "user_not_found");

        using var refused = new StringWriter();
        await File.WriteAllTextAsync(keyFile, "short");
        Assert.Equal(2, TokenCommand.Run(["token", "--sub", "dave", "--key-file", keyFile], new StringWriter(), refused));
        Assert.Contains("32", refused.ToString(), StringComparison.Ordinal);
        File.Delete(keyFile);

        // A key on the command line is refused: there is no such option.
        using var noKeyOption = new StringWriter();
        Assert.NotEqual(0, TokenCommand.Run(["token", "--sub", "dave", "--key", TestSilo.SigningKey], new StringWriter(), noKeyOption));
    }
}
