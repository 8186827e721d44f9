using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;

namespace CloudEdge.Silo.Tests;

/// <summary>Stored state written by other versions of the grains still reads: unknown fields are ignored, missing ones default.</summary>
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

            // Rewrite the stored record as a newer version (an extra field) and an older one (no history) would have.
            await using (var connection = new SqliteConnection($"Data Source={Path.Combine(directory, "grains.db")};Pooling=False"))
            {
                await connection.OpenAsync();
                await using var read = connection.CreateCommand();
                read.CommandText = "SELECT payload FROM grain_state WHERE state_name = 'order' AND grain_id = $id";
                read.Parameters.AddWithValue("$id", "order/" + orderId);
                var payload = JsonNode.Parse((string)(await read.ExecuteScalarAsync())!)!.AsObject();
                payload.Remove("history");
                payload["loyaltyPoints"] = 42;
                await using var write = connection.CreateCommand();
                write.CommandText = "UPDATE grain_state SET payload = $payload WHERE state_name = 'order' AND grain_id = $id";
                write.Parameters.AddWithValue("$payload", payload.ToJsonString());
                write.Parameters.AddWithValue("$id", "order/" + orderId);
                Assert.Equal(1, await write.ExecuteNonQueryAsync());
            }

            await using var second = await TestSilo.StartAsync(directory);
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
