using CloudEdge.Runtime.Tests.Grains;
using CloudEdge.Runtime.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.Runtime.Tests;

public sealed class CallTests
{
    private static string Key() => Guid.NewGuid().ToString("N");

    [Fact]
    public async Task Static_members_of_a_grain_interface_are_not_grain_calls()
    {
        await using var silo = await TestSilo.StartAsync();
        var key = IKeyedLookupGrain.KeyFor("tenant", "name");
        Assert.Equal("tenant:name", await silo.Grains.GetGrain<IKeyedLookupGrain>(key).Describe());
    }

    [Fact]
    public async Task Exception_reaches_the_caller_with_type_and_message()
    {
        await using var silo = await TestSilo.StartAsync();
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => silo.Grains.GetGrain<IEchoGrain>(Key()).Throw("boom 42"));
        Assert.Equal("boom 42", error.Message);
    }

    [Fact]
    public async Task A_call_that_does_not_answer_times_out_naming_grain_and_method()
    {
        await using var silo = await TestSilo.StartAsync(options: o =>
        {
            o.ResponseTimeout = TimeSpan.FromMilliseconds(300);
            o.DeactivationTimeout = TimeSpan.FromMilliseconds(200);
        });
        var key = Key();
        var error = await Assert.ThrowsAsync<GrainCallTimeoutException>(() => silo.Grains.GetGrain<IEchoGrain>(key).Hang().WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains($"echo/{key}", error.Message, StringComparison.Ordinal);
        Assert.Contains("IEchoGrain.Hang", error.Message, StringComparison.Ordinal);
        Assert.Equal("IEchoGrain.Hang", error.Method);
    }

    [Fact]
    public async Task Timeout_follows_the_injected_clock()
    {
        var time = new ManualTimeProvider(fireTimersOnThreadPool: true);
        await using var silo = await TestSilo.StartAsync(options: o => o.ResponseTimeout = TimeSpan.FromSeconds(30), time: time);
        var call = silo.Grains.GetGrain<IEchoGrain>(Key()).Hang();
        Assert.NotSame(call, await Task.WhenAny(call, Task.Delay(200)));
        await Wait.UntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(5));
            return call.IsCompleted;
        }, "the call to time out on the manual clock");
        await Assert.ThrowsAsync<GrainCallTimeoutException>(() => call);

        // The hung turn never ends: shutdown gives up after the deactivation timeout, on the same clock.
        var stop = silo.StopAsync();
        await Wait.UntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(10));
            return stop.IsCompleted;
        }, "shutdown to give up on the hung turn");
        await stop;
    }

    [Fact]
    public async Task Call_cycle_between_non_reentrant_grains_fails_fast_with_the_cycle()
    {
        await using var silo = await TestSilo.StartAsync();
        string a = "a" + Key(), b = "b" + Key();
        var error = await Assert.ThrowsAsync<DeadlockException>(() => silo.Grains.GetGrain<IPingGrain>(a).Ping(b, 2).WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal([$"ping/{a}", $"ping/{b}", $"ping/{a}"], error.CallChain.Select(g => g.ToString()));
        Assert.Contains($"ping/{a} -> ping/{b} -> ping/{a}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reentrant_grains_do_not_deadlock_on_a_call_cycle()
    {
        await using var silo = await TestSilo.StartAsync();
        string a = "a" + Key(), b = "b" + Key();
        Assert.Equal(b, await silo.Grains.GetGrain<IReentrantPingGrain>(a).Ping(b, 3).WaitAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task Arguments_and_results_are_copied_at_the_grain_boundary()
    {
        await using var silo = await TestSilo.StartAsync();
        var payload = new Payload { Number = 1, Items = ["caller"] };
        var result = await silo.Grains.GetGrain<IEchoGrain>(Key()).Mutate(payload);
        Assert.Equal(1, payload.Number);
        Assert.Equal(["caller"], payload.Items);
        Assert.NotSame(payload, result);
        Assert.Equal(2, result.Number);
        Assert.Equal(["caller", "grain"], result.Items);
    }

    [Fact]
    public async Task Immutable_arguments_are_passed_without_copying()
    {
        await using var silo = await TestSilo.StartAsync();
        var key = Key();
        var frozen = new FrozenPayload { Items = ["x"] };
        await silo.Grains.GetGrain<IEchoGrain>(key).KeepAndCompare(frozen);
        Assert.Same(frozen, EchoGrain.Received[key]);

        var payload = new Payload { Number = 3 };
        await silo.Grains.GetGrain<IEchoGrain>(key).KeepUncopied(payload);
        Assert.Same(payload, EchoGrain.ReceivedPayloads[key]);

        var wrapped = new Payload { Number = 4 }.AsImmutable();
        Assert.Same(wrapped.Value, (await silo.Grains.GetGrain<IEchoGrain>(key).EchoImmutable(wrapped)).Value);
    }

    [Fact]
    public async Task Grain_references_pass_as_arguments_and_are_equal_by_identity()
    {
        await using var silo = await TestSilo.StartAsync(s => s.AddMemoryGrainStorage());
        var counter = silo.Grains.GetGrain<ICounterGrain>(Key());
        var book = silo.Grains.GetGrain<IAddressBookGrain>(Random.Shared.NextInt64());
        await book.Remember(counter);
        Assert.Equal(4, await book.AddThroughRemembered(4));
        Assert.Equal(counter.GetGrainId().ToString(), await book.RememberedId());
        Assert.Equal(counter, silo.Grains.GetGrain<ICounterGrain>(counter.GetPrimaryKeyString()));
        Assert.IsAssignableFrom<IGrainIdentity>(counter);
    }

    [Fact]
    public async Task Grain_classes_get_DI_services_and_their_grain_type()
    {
        await using var silo = await TestSilo.StartAsync(services: s => s.AddSingleton<GreetingService>());
        Assert.Equal("hello hello/x", await silo.Grains.GetGrain<IGreeterGrain>("x").Greet());
        Assert.Equal(42, await silo.Grains.GetGrain<IEchoGrain>("v").Twice(21));
    }

    [Fact]
    public async Task Unknown_grain_type_fails_with_a_clear_error()
    {
        await using var silo = await TestSilo.StartAsync();
        var reference = silo.Grains.GetGrain<IEchoGrain>(GrainId.Create("nosuch", "1"));
        var error = await Assert.ThrowsAsync<ArgumentException>(() => reference.WhoAmI());
        Assert.Contains("nosuch", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RequestContext_flows_to_the_grain()
    {
        await using var silo = await TestSilo.StartAsync();
        RequestContext.Set("tenant", "t-7");
        try
        {
            Assert.Equal("t-7", await silo.Grains.GetGrain<IEchoGrain>(Key()).ReadContext("tenant"));
        }
        finally
        {
            RequestContext.Clear();
        }
    }
}
