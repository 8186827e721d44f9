using CloudEdge.Runtime.Tests.Grains;
using CloudEdge.Runtime.Tests.Infrastructure;

namespace CloudEdge.Runtime.Tests;

public sealed class SmokeTests
{
    [Fact]
    public async Task A_call_activates_the_grain_and_returns_its_result()
    {
        await using var silo = await TestSilo.StartAsync(s => s.AddMemoryGrainStorage());
        var counter = silo.Grains.GetGrain<ICounterGrain>("smoke");
        Assert.Equal(2, await counter.Add(2));
        Assert.Equal(5, await counter.Add(3));
        Assert.Equal(5, await counter.Get());
        Assert.Equal(8, await silo.Grains.GetGrain<IEchoGrain>("e").Twice(4));
    }
}
