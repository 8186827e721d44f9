namespace CloudEdge.Postgres.Tests;

/// <summary>Reminders through Orleans' ADO.NET reminder table on the migrated schema.</summary>
public sealed class ReminderTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task A_reminder_fires_survives_a_cluster_restart_and_is_removed_on_unregister()
    {
        var serviceId = $"reminders-{Guid.NewGuid():N}";
        int ticksBeforeRestart;
        await using (var cluster = await Clusters.StartAsync(database.ConnectionString, serviceId: serviceId))
        {
            var grain = cluster.GrainFactory.GetGrain<IReminderCountingGrain>("ticking");
            await grain.StartAsync("tick", Period);
            Assert.Equal(1L, await CountRowsAsync(serviceId));

            await Wait.UntilAsync(async () => await grain.GetTicksAsync() >= 2, "two reminder ticks");
            ticksBeforeRestart = await grain.GetTicksAsync();
        }

        await using (var restarted = await Clusters.StartAsync(database.ConnectionString, serviceId: serviceId))
        {
            var grain = restarted.GrainFactory.GetGrain<IReminderCountingGrain>("ticking");
            Assert.True(await grain.IsRegisteredAsync("tick"));
            await Wait.UntilAsync(async () => await grain.GetTicksAsync() >= ticksBeforeRestart + 2, "ticks after the restart");

            await grain.StopAsync("tick");

            Assert.False(await grain.IsRegisteredAsync("tick"));
            Assert.Equal(0L, await CountRowsAsync(serviceId));
            // A tick already under way may still land; after that the count stays put.
            await Task.Delay(Period * 2);
            var afterUnregister = await grain.GetTicksAsync();
            await Task.Delay(Period * 3);
            Assert.Equal(afterUnregister, await grain.GetTicksAsync());
        }
    }

    [Fact]
    public async Task Reminders_of_many_grains_are_all_found_across_the_hash_ring()
    {
        // Spread over the ring, the reminders are read back through both range queries (a range that wraps and
        // one that does not) when the restarted silo loads its share.
        var serviceId = $"ring-{Guid.NewGuid():N}";
        var names = Enumerable.Range(0, 12).Select(i => $"ring-{i}").ToList();
        await using (var cluster = await Clusters.StartAsync(database.ConnectionString, serviceId: serviceId))
        {
            await Task.WhenAll(names.Select(name => cluster.GrainFactory.GetGrain<IReminderCountingGrain>(name).StartAsync("tick", Period)));
        }

        Assert.True(await database.ScalarAsync<bool>(
            "SELECT min(grain_hash) < 0 AND max(grain_hash) > 0 FROM orleans_reminders WHERE service_id = @s", ("s", serviceId)));

        await using (var restarted = await Clusters.StartAsync(database.ConnectionString, serviceId: serviceId))
        {
            // A tick arrives only for reminders the restarted silo read back; the grains are not called first.
            await Wait.UntilAsync(async () => await database.ScalarAsync<long>(
                "SELECT count(*) FROM orleans_storage WHERE service_id = @s AND payload IS NOT NULL", ("s", serviceId)) == names.Count,
                "every grain's reminder to tick");
            await Task.WhenAll(names.Select(name => restarted.GrainFactory.GetGrain<IReminderCountingGrain>(name).StopAsync("tick")));
        }

        Assert.Equal(0L, await CountRowsAsync(serviceId));
    }

    private Task<long> CountRowsAsync(string serviceId) =>
        database.ScalarAsync<long>("SELECT count(*) FROM orleans_reminders WHERE service_id = @s", ("s", serviceId));
}
