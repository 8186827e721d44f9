using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace CloudEdge.Postgres.Tests;

/// <summary>Cluster membership through Orleans' ADO.NET clustering on the migrated schema.</summary>
public sealed class MembershipTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>
{
    private const int Active = 3;
    private const int Dead = 6;

    [Fact]
    public async Task Two_silos_form_a_cluster_and_a_stopped_or_killed_silo_is_marked_dead()
    {
        await using var cluster = await Clusters.StartAsync(database.ConnectionString, silos: 2);
        var clusterId = cluster.Options.ClusterId;

        await Wait.UntilAsync(async () => await CountAsync(clusterId, Active) == 2, "both silos Active in the membership table");
        Assert.Equal(2, cluster.GetActiveSilos().Count());

        // A grain call works from inside either silo and from the client that found its gateways in the table.
        foreach (var (silo, index) in cluster.Silos.Select((silo, index) => (silo, index)))
        {
            var grains = ((InProcessSiloHandle)silo).ServiceProvider.GetRequiredService<IGrainFactory>();
            Assert.Equal(index + 1, await grains.GetGrain<ICounterGrain>("shared").AddAsync(1));
        }

        Assert.Equal(3, await cluster.Client.GetGrain<ICounterGrain>("shared").AddAsync(1));

        var stopped = cluster.Silos[1];
        await cluster.StopSiloAsync(stopped);
        await Wait.UntilAsync(async () => await StatusAsync(clusterId, stopped) == Dead, "the stopped silo's row to say Dead");

        var killed = await cluster.StartAdditionalSiloAsync();
        await Wait.UntilAsync(async () => await StatusAsync(clusterId, killed) == Active, "the additional silo to join");
        await cluster.KillSiloAsync(killed);
        await Wait.UntilAsync(async () => await StatusAsync(clusterId, killed) == Dead, "the killed silo to be voted Dead");

        Assert.Equal(1, await CountAsync(clusterId, Active));
        Assert.Equal(4, await cluster.Client.GetGrain<ICounterGrain>("shared").AddAsync(1));
    }

    private Task<long> CountAsync(string clusterId, int status) =>
        database.ScalarAsync<long>("SELECT count(*) FROM orleans_membership WHERE deployment_id = @c AND status = @s",
            ("c", clusterId), ("s", status));

    private async Task<int> StatusAsync(string clusterId, SiloHandle silo)
    {
        var endpoint = silo.SiloAddress.Endpoint;
        return await database.ScalarAsync<int?>(
            "SELECT status FROM orleans_membership WHERE deployment_id = @c AND address = @a AND port = @p AND generation = @g",
            ("c", clusterId), ("a", endpoint.Address.ToString()), ("p", endpoint.Port), ("g", silo.SiloAddress.Generation)) ?? -1;
    }
}
