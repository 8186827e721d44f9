using Orleans.TestingHost;

namespace CloudEdge.Postgres.Tests;

public sealed class ClusterStartupTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task A_silo_runs_on_the_migrated_schema_and_stores_grain_state()
    {
        var builder = new TestClusterBuilder(1).UsePostgres(database.ConnectionString);
        await using var cluster = builder.Build();
        await cluster.DeployAsync();

        var counter = cluster.GrainFactory.GetGrain<ICounterGrain>("startup");
        Assert.Equal(5, await counter.AddAsync(5));

        var stored = await database.ScalarAsync<long>("SELECT count(*) FROM orleans_storage WHERE grain_id_extension = 'startup'");
        Assert.Equal(1, stored);
        var active = await database.ScalarAsync<long>("SELECT count(*) FROM orleans_membership WHERE status = 3");
        Assert.Equal(1, active);
    }
}
