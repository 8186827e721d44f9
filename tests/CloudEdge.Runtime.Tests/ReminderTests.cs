using CloudEdge.Runtime.Tests.Grains;
using CloudEdge.Runtime.Tests.Infrastructure;

namespace CloudEdge.Runtime.Tests;

public sealed class ReminderTests
{
    [Fact]
    public async Task Sqlite_reminder_fires_after_a_restart_and_activates_the_grain()
    {
        using var directory = new TempDirectory();
        var time = new ManualTimeProvider(fireTimersOnThreadPool: true);
        var key = Guid.NewGuid().ToString("N");
        void Configure(ISiloBuilder s) => s.UseSqliteReminderService(o => o.DataDirectory = directory.Path);

        await using (var first = await TestSilo.StartAsync(Configure, time: time))
        {
            await first.Grains.GetGrain<IReminderGrain>(key).Register(TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(10));
        }

        Assert.DoesNotContain(ReminderGrain.Fired, f => f.StartsWith(key, StringComparison.Ordinal));
        await using var second = await TestSilo.StartAsync(Configure, time: time);
        var runtime = (SiloRuntime)second.Services.GetService(typeof(SiloRuntime))!;
        Assert.Equal(0, runtime.Catalog.Count);
        await Wait.UntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(20));
            return ReminderGrain.Fired.Any(f => f.StartsWith($"{key}:wake:", StringComparison.Ordinal));
        }, "the reminder to fire in the restarted silo");
        Assert.True(runtime.Catalog.TryGet(GrainId.Create("reminder", key), out _));
    }

    [Fact]
    public async Task A_reminder_written_to_the_table_by_someone_else_is_picked_up_by_the_refresh()
    {
        using var directory = new TempDirectory();
        var time = new ManualTimeProvider(fireTimersOnThreadPool: true);
        var key = Guid.NewGuid().ToString("N");
        await using var silo = await TestSilo.StartAsync(s => s.UseSqliteReminderService(o => o.DataDirectory = directory.Path), time: time);

        // Another silo (or an operator) writes straight into the shared table.
        var other = new CloudEdge.Runtime.Reminders.SqliteReminderTable(
            CloudEdge.Runtime.Reminders.SqliteReminderTable.ResolveConnectionString(new() { DataDirectory = directory.Path }, directory.Path));
        await other.UpsertAsync(new(GrainId.Create("reminder", key), "wake", time.GetUtcNow() + TimeSpan.FromMinutes(2), TimeSpan.FromMinutes(10)), CancellationToken.None);

        await Wait.UntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(20));
            return ReminderGrain.Fired.Any(f => f.StartsWith($"{key}:wake:", StringComparison.Ordinal));
        }, "the externally written reminder to fire");
    }

    [Fact]
    public async Task In_memory_reminder_ticks_periodically_and_can_be_listed()
    {
        var time = new ManualTimeProvider(fireTimersOnThreadPool: true);
        var key = Guid.NewGuid().ToString("N");
        await using var silo = await TestSilo.StartAsync(s => s.UseInMemoryReminderService(), time: time);
        await silo.Grains.GetGrain<IReminderGrain>(key).Register(TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10));
        var registry = (IReminderRegistry)silo.Services.GetService(typeof(IReminderRegistry))!;
        Assert.NotNull(await registry.GetReminder(GrainId.Create("reminder", key), "wake"));
        await Wait.UntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(5));
            return ReminderGrain.Fired.Count(f => f.StartsWith(key, StringComparison.Ordinal)) >= 3;
        }, "three reminder ticks");
    }
}
