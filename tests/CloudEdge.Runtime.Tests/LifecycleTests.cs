using CloudEdge.Runtime.Tests.Grains;
using CloudEdge.Runtime.Tests.Infrastructure;

namespace CloudEdge.Runtime.Tests;

public sealed class LifecycleTests
{
    private static string Key() => Guid.NewGuid().ToString("N");

    [Fact]
    public async Task Idle_activation_is_collected_by_age_on_the_clock_and_reactivates_with_its_state()
    {
        var time = new ManualTimeProvider(fireTimersOnThreadPool: true);
        await using var silo = await TestSilo.StartAsync(s => s.AddMemoryGrainStorage(), o =>
        {
            o.CollectionAge = TimeSpan.FromMinutes(2);
            o.CollectionQuantum = TimeSpan.FromSeconds(30);
        }, time);
        var key = Key();
        var counter = silo.Grains.GetGrain<ICounterGrain>(key);
        Assert.Equal(5, await counter.Add(5));

        // Not yet idle long enough.
        time.Advance(TimeSpan.FromMinutes(1));
        await Task.Delay(100);
        Assert.DoesNotContain($"deactivate counter/{key} ActivationIdle", CounterGrain.Lifecycle);

        await Wait.UntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(30));
            return CounterGrain.Lifecycle.Contains($"deactivate counter/{key} ActivationIdle");
        }, "idle collection");

        Assert.Equal(5, await counter.Get());
        Assert.Contains($"activate counter/{key} 5", CounterGrain.Lifecycle);
        Assert.Equal(2, CounterGrain.Lifecycle.Count(e => e.StartsWith($"activate counter/{key}", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task DelayDeactivation_keeps_an_idle_activation_alive()
    {
        var time = new ManualTimeProvider(fireTimersOnThreadPool: true);
        await using var silo = await TestSilo.StartAsync(o => { }, o =>
        {
            o.CollectionAge = TimeSpan.FromMinutes(1);
            o.CollectionQuantum = TimeSpan.FromSeconds(10);
        }, time);
        var key = Guid.NewGuid();
        var grain = silo.Grains.GetGrain<ITimerGrain>(key);
        await grain.Ticks();
        var runtime = (SiloRuntime)silo.Services.GetService(typeof(SiloRuntime))!;
        Assert.True(runtime.Catalog.TryGet(grain.GetGrainId(), out var activation));
        activation.DelayDeactivation(TimeSpan.FromMinutes(10));
        for (var i = 0; i < 30; i++)
        {
            time.Advance(TimeSpan.FromSeconds(10));
        }

        await Task.Delay(100);
        Assert.True(runtime.Catalog.TryGet(grain.GetGrainId(), out _), "kept alive for 10 minutes");
        await Wait.UntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(30));
            return !runtime.Catalog.TryGet(grain.GetGrainId(), out _);
        }, "collection after the delay");
    }

    [Fact]
    public async Task DeactivateOnIdle_deactivates_after_the_turn_and_the_next_call_reactivates()
    {
        await using var silo = await TestSilo.StartAsync(s => s.AddMemoryGrainStorage());
        var key = Key();
        var counter = silo.Grains.GetGrain<ICounterGrain>(key);
        await counter.Add(3);
        await counter.Deactivate();
        await Wait.UntilAsync(() => CounterGrain.Lifecycle.Contains($"deactivate counter/{key} ApplicationRequested"), "DeactivateOnIdle");
        Assert.Equal(3, await counter.Get());
        Assert.Contains($"activate counter/{key} 3", CounterGrain.Lifecycle);
    }

    [Fact]
    public async Task Calls_racing_with_deactivation_are_never_lost()
    {
        await using var silo = await TestSilo.StartAsync(s => s.AddMemoryGrainStorage());
        var counter = silo.Grains.GetGrain<ICounterGrain>(Key());
        var adds = Enumerable.Range(0, 200).Select(i => Task.Run(async () =>
        {
            await counter.Add(1);
            if (i % 10 == 0)
            {
                await counter.Deactivate();
            }
        })).ToArray();
        await Task.WhenAll(adds).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(200, await counter.Get());
    }

    [Fact]
    public async Task Graceful_shutdown_finishes_running_turns_deactivates_everything_and_rejects_new_calls()
    {
        var silo = await TestSilo.StartAsync(s => s.AddMemoryGrainStorage());
        var key = Key();
        var gate = Key();
        var counterKey = Key();
        await silo.Grains.GetGrain<ICounterGrain>(counterKey).Add(1);
        var slow = silo.Grains.GetGrain<ISlowGrain>(key).Slow(gate);
        await Wait.UntilAsync(() => SlowGrain.Started.Contains(key), "the slow turn to start");

        var stopping = silo.StopAsync();
        var echo = silo.Grains.GetGrain<IEchoGrain>(Key());
        await Assert.ThrowsAsync<SiloUnavailableException>(() => echo.WhoAmI());
        await Assert.ThrowsAsync<SiloUnavailableException>(() => silo.Grains.GetGrain<ITurnGrain>(Key()).Fire("late", 0));
        Assert.False(slow.IsCompleted);

        Gates.For(gate).SetResult();
        Assert.Equal("done", await slow);
        await stopping.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Contains($"{key}:ShuttingDown", SlowGrain.Deactivated);
        Assert.Contains($"deactivate counter/{counterKey} ShuttingDown", CounterGrain.Lifecycle);
        await silo.DisposeAsync();
    }

    [Fact]
    public async Task Timer_ticks_as_grain_turns_on_the_clock_and_stops_when_disposed()
    {
        var time = new ManualTimeProvider(fireTimersOnThreadPool: true);
        await using var silo = await TestSilo.StartAsync(time: time);
        var key = Guid.NewGuid();
        var grain = silo.Grains.GetGrain<ITimerGrain>(key);
        await grain.Start(TimeSpan.FromSeconds(1), interleave: false);
        Assert.Equal(0, await grain.Ticks());
        await Wait.UntilAsync(async () =>
        {
            time.Advance(TimeSpan.FromSeconds(1));
            return await grain.Ticks() >= 3;
        }, "three ticks");
        await grain.StopTimer();
        var ticks = await grain.Ticks();
        for (var i = 0; i < 5; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
        }

        await Task.Delay(100);
        Assert.Equal(ticks, await grain.Ticks());
        Assert.Equal(1, TurnLogs.For("timer-" + key.ToString("N")).MaxConcurrent);
    }

    [Fact]
    public async Task Timers_stop_when_their_activation_deactivates()
    {
        var time = new ManualTimeProvider(fireTimersOnThreadPool: true);
        await using var silo = await TestSilo.StartAsync(time: time);
        var runtime = (SiloRuntime)silo.Services.GetService(typeof(SiloRuntime))!;
        var grain = silo.Grains.GetGrain<ITimerGrain>(Guid.NewGuid());
        await grain.Start(TimeSpan.FromSeconds(1), interleave: false);
        await Wait.UntilAsync(async () =>
        {
            time.Advance(TimeSpan.FromSeconds(1));
            return await grain.Ticks() >= 1;
        }, "a first tick");
        Assert.True(runtime.Catalog.TryGet(grain.GetGrainId(), out var activation));
        await activation.DeactivateAsync(new DeactivationReason(DeactivationReasonCode.ApplicationRequested, "test"));
        for (var i = 0; i < 5; i++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
        }

        await Task.Delay(100);
        Assert.False(runtime.Catalog.TryGet(grain.GetGrainId(), out _), "a tick must not reactivate the grain");
        Assert.Equal(0, await grain.Ticks());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Timer_ticks_interleave_with_a_waiting_turn_only_when_asked_to(bool interleave)
    {
        var time = new ManualTimeProvider(fireTimersOnThreadPool: true);
        await using var silo = await TestSilo.StartAsync(time: time);
        var key = Guid.NewGuid();
        var grain = silo.Grains.GetGrain<ITimerGrain>(key);
        var log = TurnLogs.For("timer-" + key.ToString("N"));
        int Ticks() => log.Events.Count(e => e == "enter tick");
        await grain.Start(TimeSpan.FromSeconds(1), interleave);
        var gate = Guid.NewGuid().ToString("N");
        var blocked = grain.Block(gate);
        if (interleave)
        {
            await Wait.UntilAsync(() =>
            {
                time.Advance(TimeSpan.FromSeconds(1));
                return Ticks() >= 2;
            }, "ticks while the turn waits");
        }
        else
        {
            for (var i = 0; i < 5; i++)
            {
                time.Advance(TimeSpan.FromSeconds(1));
            }

            await Task.Delay(200);
            Assert.Equal(0, Ticks());
        }

        Gates.For(gate).SetResult();
        await blocked;
        await Wait.UntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(1));
            return Ticks() >= 3;
        }, "ticks after the turn");
        Assert.Equal(1, log.MaxConcurrent);
    }
}
