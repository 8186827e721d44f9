using System.Net;
using CloudEdge.Grains;

namespace CloudEdge.Silo.Tests;

/// <summary>
/// Stored state written by other versions of the grains still reads: Orleans' serializer skips fields it
/// does not know and leaves missing ones at their defaults (state classes number their fields with [Id]).
/// </summary>
public sealed class StateCompatibilityTests
{
    [Fact]
    public async Task An_order_record_with_unknown_and_missing_fields_still_reads_and_accepts_commands()
    {
        var directory = TestSilo.NewDataDirectory();
        try
        {
            string orderId;
            await using (var first = await TestSilo.StartAsync(directory))
            {
                var client = first.As("erin");
                (await client.Post("/api/v1/users", new { email = "erin@example.com", displayName = "Erin" }, "reg")).AssertStatus(HttpStatusCode.Created);
                orderId = (string)(await client.Post("/api/v1/orders", new { lines = new[] { new { sku = "a", quantity = 2, unitPrice = 3m } } }, "c1"))
                    .AssertStatus(HttpStatusCode.Created)["orderId"]!;
            }

            await using var second = await TestSilo.StartAsync(directory);
            // Rewrite the stored record as another version would have: an extra field, and no history.
            var stored = await second.ReadStateAsync<OrderState>("order", "order", orderId);
            var current = stored.State!;
            var other = new Orleans.GrainState<OrderStateOfAnotherVersion>(new OrderStateOfAnotherVersion
            {
                Created = current.Created,
                UserId = current.UserId,
                Status = current.Status,
                Lines = current.Lines,
                Total = current.Total,
                CreatedAt = current.CreatedAt,
                UpdatedAt = current.UpdatedAt,
                Version = current.Version,
                Commands = current.Commands,
                LoyaltyPoints = 42,
            }) { ETag = stored.ETag, RecordExists = true };
            await second.Storage.WriteStateAsync("order", GrainId.Create("order", orderId), other);

            var again = second.As("erin");
            var order = (await again.Get($"/api/v1/orders/{orderId}")).AssertStatus(HttpStatusCode.OK);
            Assert.Equal(6m, (decimal)order["total"]!);
            Assert.Empty(order["history"]!.AsArray());
            var paid = (await again.Post($"/api/v1/orders/{orderId}/pay", null, "p1")).AssertStatus(HttpStatusCode.OK);
            Assert.Equal("Paid", (string?)paid["status"]);
        }
        finally
        {
            TestSilo.DeleteDirectory(directory);
        }
    }
}

/// <summary><see cref="OrderState"/> as another version of the grain stores it: no history (field 9), a field of its own.</summary>
[GenerateSerializer]
[Alias("cloudedge.tests.OrderStateOfAnotherVersion")]
public sealed class OrderStateOfAnotherVersion
{
    [Id(0)]
    public bool Created { get; set; }

    [Id(1)]
    public string UserId { get; set; } = string.Empty;

    [Id(2)]
    public OrderStatus Status { get; set; }

    [Id(3)]
    public List<OrderLine> Lines { get; set; } = [];

    [Id(4)]
    public decimal Total { get; set; }

    [Id(5)]
    public DateTimeOffset CreatedAt { get; set; }

    [Id(6)]
    public DateTimeOffset UpdatedAt { get; set; }

    [Id(7)]
    public long Version { get; set; }

    [Id(10)]
    public CommandLog<OrderView> Commands { get; set; } = new();

    [Id(40)]
    public long LoyaltyPoints { get; set; }
}
