using System.Net;

namespace CloudEdge.Silo.Tests;

/// <summary>Commands racing each other over HTTP: retries apply once, and one of competing transitions wins.</summary>
public sealed class ConcurrencyTests(SiloFixture fixture) : IClassFixture<SiloFixture>
{
    private readonly TestSilo silo = fixture.Silo;

    [Fact]
    public async Task Parallel_retries_of_one_create_make_one_order()
    {
        var userId = Ids.New("user");
        var client = silo.As(userId);
        (await client.Post("/api/v1/users", new { email = $"{userId}@example.com", displayName = "Racer" }, "reg")).AssertStatus(HttpStatusCode.Created);

        var body = new { lines = new[] { new { sku = "a", quantity = 1, unitPrice = 2m } } };
        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => client.Post("/api/v1/orders", body, "one-create")));

        var orderIds = results.Select(r => (string)r.AssertStatus(HttpStatusCode.Created)["orderId"]!).Distinct().ToList();
        Assert.Single(orderIds);
        Assert.Equal(1, (int)(await client.Get("/api/v1/orders")).AssertStatus(HttpStatusCode.OK)["total"]!);
    }

    [Fact]
    public async Task Of_competing_pay_and_cancel_commands_exactly_one_wins()
    {
        var userId = Ids.New("user");
        var client = silo.As(userId);
        (await client.Post("/api/v1/users", new { email = $"{userId}@example.com", displayName = "Racer" }, "reg")).AssertStatus(HttpStatusCode.Created);
        var orderId = (string)(await client.Post("/api/v1/orders", new { lines = new[] { new { sku = "a", quantity = 1, unitPrice = 2m } } }, "c"))
            .AssertStatus(HttpStatusCode.Created)["orderId"]!;

        var attempts = Enumerable.Range(0, 12).Select(i => i % 2 == 0
            ? client.Post($"/api/v1/orders/{orderId}/pay", null, $"pay-{i}")
            : client.Post($"/api/v1/orders/{orderId}/cancel", null, $"cancel-{i}"));
        var results = await Task.WhenAll(attempts);

        var winners = results.Where(r => r.Response.StatusCode == HttpStatusCode.OK).ToList();
        var losers = results.Where(r => r.Response.StatusCode != HttpStatusCode.OK).ToList();
        // Cancel is legal after pay, so at most one pay and one cancel succeed, in that order.
        Assert.InRange(winners.Count, 1, 2);
        Assert.All(losers, r => r.AssertStatus(HttpStatusCode.Conflict, "illegal_transition"));
        var final = (await client.Get($"/api/v1/orders/{orderId}")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(1 + winners.Count, (long)final["version"]!);
        Assert.Equal(winners.Count == 2 ? "Cancelled" : winners[0].Body!["status"]!.GetValue<string>(), (string?)final["status"]);
    }
}
