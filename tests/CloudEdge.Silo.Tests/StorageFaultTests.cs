using System.Net;
using CloudEdge.Grains;
using CloudEdge.Silo.Hosting;
using CloudEdge.Testing.Postgres;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.Silo.Tests;

/// <summary>
/// What callers see when the storage misbehaves: a stale ETag (another activation wrote the record) is a
/// 409, a PostgreSQL that stops answering is a 503 that loses nothing acknowledged, and a PostgreSQL that is
/// down at start keeps the silo unready until it answers. These tests stop their own PostgreSQL instance.
/// </summary>
public sealed class StorageFaultTests
{
    [Fact]
    public async Task A_write_with_a_stale_etag_answers_409_and_the_retry_succeeds()
    {
        await using var silo = await TestSilo.StartAsync();
        var user = silo.As("sam");
        (await user.Post("/api/v1/users", new { email = "sam@example.com", displayName = "Sam" }, "reg")).AssertStatus(HttpStatusCode.Created);

        // Another writer (a second activation of the same grain on another silo) stores the record meanwhile.
        var stored = await silo.ReadStateAsync<UserState>("user", "user", "sam");
        stored.State!.DisplayName = "Samuel";
        await silo.WriteStateAsync("user", "user", "sam", stored);

        (await user.Send(HttpMethod.Patch, "/api/v1/users/sam", new { displayName = "Sammy" }, "rename-1")).AssertStatus(HttpStatusCode.Conflict, "etag_conflict");
        // The activation read the record again: it now sees the other writer's change, and a retry applies on top of it.
        var renamed = (await user.Send(HttpMethod.Patch, "/api/v1/users/sam", new { displayName = "Sammy" }, "rename-1")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal("Sammy", (string?)renamed["displayName"]);
    }

    [Fact]
    public async Task PostgreSQL_down_while_running_answers_503_and_loses_no_acknowledged_write()
    {
        await using var server = await PostgresServer.CreateAsync();
        var settings = new Dictionary<string, string> { ["Silo:Postgres"] = await server.CreateDatabaseAsync() };
        await using var silo = await TestSilo.StartAsync(settings: settings);
        var buyer = silo.As("bea");
        (await buyer.Post("/api/v1/users", new { email = "bea@example.com", displayName = "Bea" }, "reg")).AssertStatus(HttpStatusCode.Created);
        var orderId = (string)(await buyer.Post("/api/v1/orders", new { lines = new[] { new { sku = "a", quantity = 1, unitPrice = 5m } } }, "order-1"))
            .AssertStatus(HttpStatusCode.Created)["orderId"]!;

        await server.StopAsync();
        (await buyer.Post($"/api/v1/orders/{orderId}/pay", null, "pay-1")).AssertStatus(HttpStatusCode.ServiceUnavailable, "storage_unavailable");

        await server.StartAsync();
        // The same request again (same Idempotency-Key) goes through once the database answers.
        await Wait.UntilAsync(async () => (await buyer.Post($"/api/v1/orders/{orderId}/pay", null, "pay-1")).Response.StatusCode == HttpStatusCode.OK, "the retried payment succeeds");
        var order = (await buyer.Get($"/api/v1/orders/{orderId}")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal("Paid", (string?)order["status"]);

        // What was acknowledged before the outage is in the database: a new silo on it sees it.
        await silo.DisposeAsync();
        await using var again = await TestSilo.StartAsync(settings: settings);
        Assert.Equal("Paid", (string?)(await again.As("bea").Get($"/api/v1/orders/{orderId}")).AssertStatus(HttpStatusCode.OK)["status"]);
    }

    [Fact]
    public async Task PostgreSQL_down_at_start_keeps_the_silo_unready_and_it_starts_when_the_database_answers()
    {
        await using var server = await PostgresServer.CreateAsync();
        var connectionString = await server.CreateDatabaseAsync();
        await server.StopAsync();
        var directory = TestSilo.NewDataDirectory();
        var app = SiloApplication.Build(TestSilo.Arguments(directory, new Dictionary<string, string> { ["Silo:Postgres"] = connectionString }));
        try
        {
            var starting = app.StartAsync();
            var readiness = app.Services.GetRequiredService<PostgresReadiness>();
            await Wait.UntilAsync(() => readiness.Failure?.Contains("unreachable", StringComparison.Ordinal) == true, "the silo reports PostgreSQL unreachable");
            Assert.False(starting.IsCompleted);

            await server.StartAsync();
            await starting.WaitAsync(TimeSpan.FromMinutes(2));
            Assert.Null(readiness.Failure);
            var grains = app.Services.GetRequiredService<IGrainFactory>();
            Assert.False(await grains.GetGrain<IUserGrain>("nobody").Exists());
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
            TestSilo.DeleteDirectory(directory);
        }
    }
}
