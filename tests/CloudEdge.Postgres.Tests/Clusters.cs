using Orleans.Configuration;
using Orleans.TestingHost;

namespace CloudEdge.Postgres.Tests;

/// <summary>Starts Orleans test clusters on a test class's database.</summary>
internal static class Clusters
{
    /// <summary>
    /// A deployed cluster of <paramref name="silos"/> on <paramref name="connectionString"/>. A cluster with the
    /// <paramref name="serviceId"/> of an earlier one sees that one's grain state and reminders.
    /// </summary>
    public static async Task<TestCluster> StartAsync(string connectionString, short silos = 1, string? serviceId = null)
    {
        var builder = new TestClusterBuilder(silos).UsePostgres(connectionString, serviceId);
        builder.AddSiloBuilderConfigurator<QuickFailureDetection>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    /// <summary>
    /// Declares an unresponsive silo dead within seconds (the defaults take about a minute), so that a killed
    /// silo is marked Dead while the test waits; one vote suffices in a two-silo cluster.
    /// </summary>
    private sealed class QuickFailureDetection : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) =>
            siloBuilder.Configure<ClusterMembershipOptions>(options =>
            {
                options.ProbeTimeout = TimeSpan.FromSeconds(1);
                options.NumMissedProbesLimit = 2;
                options.NumVotesForDeathDeclaration = 1;
                options.TableRefreshTimeout = TimeSpan.FromSeconds(2);
                options.IAmAliveTablePublishTimeout = TimeSpan.FromSeconds(2);
            });
    }
}
