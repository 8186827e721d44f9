using Orleans.Storage;

namespace CloudEdge.Postgres.Tests;

/// <summary>Grain state through Orleans' ADO.NET grain storage on the migrated schema.</summary>
public sealed class GrainStorageTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task State_round_trips_across_a_deactivation_and_a_whole_cluster_restart()
    {
        var serviceId = $"storage-{Guid.NewGuid():N}";
        await using (var cluster = await Clusters.StartAsync(database.ConnectionString, serviceId: serviceId))
        {
            var counter = cluster.GrainFactory.GetGrain<ICounterGrain>("restart");
            await counter.AddAsync(3);
            Assert.Equal(7, await counter.AddAsync(4));

            await counter.DeactivateAsync();
            Assert.Equal(7, await counter.GetAsync());
            Assert.Equal("2", await counter.GetETagAsync());
        }

        Assert.Equal(2, await database.ScalarAsync<int>(
            "SELECT version FROM orleans_storage WHERE service_id = @s AND grain_id_extension = 'restart'", ("s", serviceId)));

        await using (var restarted = await Clusters.StartAsync(database.ConnectionString, serviceId: serviceId))
        {
            var counter = restarted.GrainFactory.GetGrain<ICounterGrain>("restart");
            Assert.Equal(7, await counter.GetAsync());
            Assert.Equal(8, await counter.AddAsync(1));
        }
    }

    [Fact]
    public async Task Guid_integer_and_string_keys_are_kept_apart()
    {
        await using var cluster = await Clusters.StartAsync(database.ConnectionString);
        var guid = Guid.NewGuid();
        await cluster.GrainFactory.GetGrain<IGuidCounterGrain>(guid).AddAsync(1);
        await cluster.GrainFactory.GetGrain<IGuidCounterGrain>(Guid.NewGuid()).AddAsync(2);
        await cluster.GrainFactory.GetGrain<ICompoundCounterGrain>(42, "a").AddAsync(3);
        await cluster.GrainFactory.GetGrain<ICompoundCounterGrain>(42, "b").AddAsync(4);
        await cluster.GrainFactory.GetGrain<ICompoundCounterGrain>(43, "a").AddAsync(5);

        foreach (var grain in new ICounterGrain[]
        {
            cluster.GrainFactory.GetGrain<IGuidCounterGrain>(guid),
            cluster.GrainFactory.GetGrain<ICompoundCounterGrain>(42, "a"),
            cluster.GrainFactory.GetGrain<ICompoundCounterGrain>(42, "b"),
            cluster.GrainFactory.GetGrain<ICompoundCounterGrain>(43, "a"),
        })
        {
            await grain.DeactivateAsync();
        }

        Assert.Equal(1, await cluster.GrainFactory.GetGrain<IGuidCounterGrain>(guid).GetAsync());
        Assert.Equal(3, await cluster.GrainFactory.GetGrain<ICompoundCounterGrain>(42, "a").GetAsync());
        Assert.Equal(4, await cluster.GrainFactory.GetGrain<ICompoundCounterGrain>(42, "b").GetAsync());
        Assert.Equal(5, await cluster.GrainFactory.GetGrain<ICompoundCounterGrain>(43, "a").GetAsync());
    }

    [Fact]
    public async Task A_stale_etag_from_a_second_writer_raises_InconsistentStateException()
    {
        // Two clusters of one service on one database: the same grain is active in both, the situation a
        // split or a duplicate activation creates. The second write with an outdated ETag must fail.
        var serviceId = $"writers-{Guid.NewGuid():N}";
        await using var first = await Clusters.StartAsync(database.ConnectionString, serviceId: serviceId);
        await using var second = await Clusters.StartAsync(database.ConnectionString, serviceId: serviceId);
        var inFirst = first.GrainFactory.GetGrain<ICounterGrain>("contested");
        var inSecond = second.GrainFactory.GetGrain<ICounterGrain>("contested");
        Assert.Equal(0, await inFirst.GetAsync());
        Assert.Equal(0, await inSecond.GetAsync());

        Assert.Equal(1, await inFirst.AddAsync(1));
        await Assert.ThrowsAsync<InconsistentStateException>(() => inSecond.AddAsync(10));

        // The loser's activation is dropped; a new one reads the winner's state and can write on top of it.
        await Wait.UntilAsync(async () => await inSecond.GetAsync() == 1, "the second cluster to re-read the state");
        Assert.Equal(3, await inSecond.AddAsync(2));
        await Assert.ThrowsAsync<InconsistentStateException>(() => inFirst.AddAsync(100));

        await inFirst.DeactivateAsync();
        await Wait.UntilAsync(async () => await inFirst.GetAsync() == 3, "the first cluster to read the acknowledged state");
    }

    [Fact]
    public async Task Clearing_state_empties_the_payload_and_keeps_counting_versions()
    {
        await using var cluster = await Clusters.StartAsync(database.ConnectionString);
        var serviceId = cluster.Options.ServiceId;
        var counter = cluster.GrainFactory.GetGrain<ICounterGrain>("cleared");
        await counter.AddAsync(5);

        await counter.ClearAsync();

        Assert.Equal(0, await counter.GetAsync());
        Assert.True(await database.ScalarAsync<bool>(
            "SELECT payload IS NULL FROM orleans_storage WHERE service_id = @s AND grain_id_extension = 'cleared'", ("s", serviceId)));
        await counter.DeactivateAsync();
        Assert.Equal(0, await counter.GetAsync());
        Assert.Equal("2", await counter.GetETagAsync());
        Assert.Equal(1, await counter.AddAsync(1));
        Assert.Equal(3, await database.ScalarAsync<int>(
            "SELECT version FROM orleans_storage WHERE service_id = @s AND grain_id_extension = 'cleared'", ("s", serviceId)));
    }
}
