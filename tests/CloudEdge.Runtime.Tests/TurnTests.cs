using CloudEdge.Runtime.Tests.Grains;
using CloudEdge.Runtime.Tests.Infrastructure;

namespace CloudEdge.Runtime.Tests;

public sealed class TurnTests
{
    private static string Key() => Guid.NewGuid().ToString("N");

    /// <summary>Every call's slices (enter :1 .. exit :2) must be contiguous in a non-reentrant grain.</summary>
    private static void AssertNoInterleaving(TurnLog log)
    {
        string? open = null;
        foreach (var e in log.Events)
        {
            var name = e.Split(' ')[1].Split(':')[0];
            if (open is null)
            {
                open = name;
            }

            Assert.Equal(open, name);
            if (e.StartsWith("exit", StringComparison.Ordinal) && e.EndsWith(":2", StringComparison.Ordinal))
            {
                open = null;
            }
        }
    }

    [Fact]
    public async Task Concurrent_callers_never_overlap_turns_of_a_non_reentrant_grain()
    {
        await using var silo = await TestSilo.StartAsync();
        var key = Key();
        var grain = silo.Grains.GetGrain<ITurnGrain>(key);
        var calls = Enumerable.Range(0, 40).Select(i => Task.Run(() => grain.Work("c" + i, i % 3))).ToArray();
        await Task.WhenAll(calls);
        var log = TurnLogs.For(key);
        Assert.Equal(1, log.MaxConcurrent);
        Assert.Equal(160, log.Events.Count);
        AssertNoInterleaving(log);
        Assert.Equal(40, await grain.TurnsSeen());
    }

    [Fact]
    public async Task Reentrant_grain_interleaves_at_awaits_but_never_runs_turns_in_parallel()
    {
        await using var silo = await TestSilo.StartAsync();
        var key = Key();
        var grain = silo.Grains.GetGrain<IReentrantTurnGrain>(key);
        var gate = Key();
        var blocked = grain.Block(gate);
        await Wait.UntilAsync(() => TurnLogs.For(key).Events.Contains("exit block"), "the blocking call to start");

        // Another call runs to completion while the first one waits at its await.
        await grain.Work("other", 0).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(blocked.IsCompleted);
        Gates.For(gate).SetResult();
        await blocked;

        var events = TurnLogs.For(key).Events.ToList();
        Assert.True(events.IndexOf("exit other:2") < events.IndexOf("enter unblocked"));

        var many = Enumerable.Range(0, 30).Select(i => Task.Run(() => grain.Work("m" + i, 1))).ToArray();
        await Task.WhenAll(many);
        Assert.Equal(1, TurnLogs.For(key).MaxConcurrent);
    }

    [Fact]
    public async Task Non_reentrant_grain_queues_a_call_behind_a_waiting_turn()
    {
        await using var silo = await TestSilo.StartAsync();
        var key = Key();
        var grain = silo.Grains.GetGrain<ITurnGrain>(key);
        var gate = Key();
        var blocked = grain.Block(gate);
        await Wait.UntilAsync(() => TurnLogs.For(key).Events.Contains("exit block"), "the blocking call to start");
        var queued = grain.Work("queued", 0);
        Assert.NotSame(queued, await Task.WhenAny(queued, Task.Delay(300)));
        Gates.For(gate).SetResult();
        await Task.WhenAll(blocked, queued);
        var events = TurnLogs.For(key).Events.ToList();
        Assert.True(events.IndexOf("exit unblocked") < events.IndexOf("enter queued:1"));
    }

    [Fact]
    public async Task AlwaysInterleave_method_runs_while_a_turn_waits_and_still_one_slice_at_a_time()
    {
        await using var silo = await TestSilo.StartAsync();
        var key = Key();
        var grain = silo.Grains.GetGrain<ITurnGrain>(key);
        var gate = Key();
        var blocked = grain.Block(gate);
        await Wait.UntilAsync(() => TurnLogs.For(key).Events.Contains("exit block"), "the blocking call to start");
        await grain.Interleaving("i", 0).WaitAsync(TimeSpan.FromSeconds(30));
        var ordinary = grain.Work("w", 0);
        Assert.NotSame(ordinary, await Task.WhenAny(ordinary, Task.Delay(300)));
        Gates.For(gate).SetResult();
        await Task.WhenAll(blocked, ordinary);
        Assert.Equal(1, TurnLogs.For(key).MaxConcurrent);
    }

    [Fact]
    public async Task ReadOnly_methods_interleave_with_each_other_but_not_with_writers()
    {
        await using var silo = await TestSilo.StartAsync();
        var key = Key();
        var grain = silo.Grains.GetGrain<ITurnGrain>(key);
        var gate = Key();
        var reading = grain.ReadBlock(gate);
        await Wait.UntilAsync(() => TurnLogs.For(key).Events.Contains("exit block"), "the read-only call to start");
        await grain.Read("r", 0).WaitAsync(TimeSpan.FromSeconds(30));
        var writer = grain.Work("w", 0);
        Assert.NotSame(writer, await Task.WhenAny(writer, Task.Delay(300)));
        Gates.For(gate).SetResult();
        await Task.WhenAll(reading, writer);
        Assert.Equal(1, TurnLogs.For(key).MaxConcurrent);
    }

    [Fact]
    public async Task OneWay_call_returns_once_queued_and_runs_later()
    {
        await using var silo = await TestSilo.StartAsync();
        var key = Key();
        var grain = silo.Grains.GetGrain<ITurnGrain>(key);
        var gate = Key();
        var blocked = grain.Block(gate);
        await Wait.UntilAsync(() => TurnLogs.For(key).Events.Contains("exit block"), "the blocking call to start");
        var fire = grain.Fire("oneway", 0);
        Assert.True(fire.IsCompleted, "A one-way call completes for the caller as soon as it is queued.");
        Assert.DoesNotContain("enter oneway:1", TurnLogs.For(key).Events);
        Gates.For(gate).SetResult();
        await blocked;
        await Wait.UntilAsync(() => TurnLogs.For(key).Events.Contains("exit oneway:2"), "the one-way call to run");
        Assert.Equal(1, TurnLogs.For(key).MaxConcurrent);
    }
}
