using Npgsql;

namespace CloudEdge.Postgres.Tests;

/// <summary>
/// A PostgreSQL that goes away under a running silo: a grain's state write fails with Orleans'
/// <see cref="OrleansException"/> ("Error from storage provider ...") whose inner exception is Npgsql's
/// <see cref="NpgsqlException"/> (what the Silo maps to 503), and nothing that was acknowledged is lost once
/// the server is back. Uses a server of its own:
/// stopping the shared one would break every other test class running at the same time.
/// </summary>
public sealed class DatabaseOutageTests : IAsyncLifetime
{
    private PostgresServer server = null!;
    private string connectionString = "";

    public async Task InitializeAsync()
    {
        server = await PostgresServer.CreateAsync();
        connectionString = await server.CreateDatabaseAsync(nameof(DatabaseOutageTests));
    }

    public async Task DisposeAsync() => await server.DisposeAsync();

    [Fact]
    public async Task A_write_fails_while_the_database_is_down_and_acknowledged_state_survives()
    {
        await using var cluster = await Clusters.StartAsync(connectionString);
        var counter = cluster.GrainFactory.GetGrain<ICounterGrain>("outage");
        Assert.Equal(1, await counter.AddAsync(1));

        await server.StopAsync();
        try
        {
            var failure = await Assert.ThrowsAsync<OrleansException>(() => counter.AddAsync(10));
            // "Failed to connect" on a new connection, or the server's own 57P01 (a PostgresException) on a
            // pooled one its shutdown ended: both are NpgsqlException.
            Assert.IsAssignableFrom<NpgsqlException>(failure.InnerException);
        }
        finally
        {
            await server.StartAsync();
        }

        // The failed write's increment is only in the activation's memory: drop the activation and read what
        // the database acknowledged.
        await counter.DeactivateAsync();
        await Wait.UntilAsync(async () => await counter.GetAsync() == 1, "the acknowledged value after the restart");
        Assert.Equal(6, await counter.AddAsync(5));
        await counter.DeactivateAsync();
        Assert.Equal(6, await counter.GetAsync());
    }
}
