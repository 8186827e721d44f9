using System.Collections.Immutable;
using CloudEdge.Runtime.Copying;
using CloudEdge.Runtime.Hosting;
using CloudEdge.Runtime.Messaging;
using CloudEdge.Runtime.References;
using CloudEdge.Runtime.Serialization;
using CloudEdge.Runtime.Tests.Grains;
using CloudEdge.Runtime.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CloudEdge.Runtime.Tests;

public sealed record Point(int X, int Y);

public sealed record Tagged(string Name, Point Where);

public sealed class Node
{
    public Node? Next { get; set; }

    public int Value { get; set; }
}

public sealed class Bag
{
    public int[] Numbers { get; set; } = [];

    public Dictionary<string, List<int>> Groups { get; set; } = [];

    public object? Anything { get; set; }

    public ImmutableArray<string> Frozen { get; set; } = [];
}

public interface IBadGrain : IGrainWithStringKey
{
    string NotAsync();
}

public sealed class MessagingAndCopyTests
{
    [Fact]
    public void Immutable_types_are_recognised_and_passed_through()
    {
        Assert.True(DeepCopier.IsImmutable(typeof(Point)));
        Assert.True(DeepCopier.IsImmutable(typeof(Tagged)));
        Assert.True(DeepCopier.IsImmutable(typeof(FrozenPayload)));
        Assert.True(DeepCopier.IsImmutable(typeof(ImmutableArray<string>)));
        Assert.False(DeepCopier.IsImmutable(typeof(Payload)));
        Assert.False(DeepCopier.IsImmutable(typeof(Node)));
        var point = new Point(1, 2);
        Assert.Same(point, DeepCopier.Copy(point));
        Assert.Same(point, DeepCopier.CopyObject(point));
    }

    [Fact]
    public void Mutable_graphs_are_copied_deeply()
    {
        var shared = new List<int> { 1, 2 };
        var bag = new Bag
        {
            Numbers = [1, 2, 3],
            Groups = new() { ["a"] = shared },
            Anything = new Payload { Number = 5, Items = ["x"] },
            Frozen = ["f"],
        };
        // Touching Keys caches a view that points back at the dictionary: the copy must not chase it.
        Assert.Single(bag.Groups.Keys);
        var copy = DeepCopier.Copy(bag);
        Assert.NotSame(bag, copy);
        Assert.NotSame(bag.Numbers, copy.Numbers);
        Assert.Equal(bag.Numbers, copy.Numbers);
        Assert.NotSame(bag.Groups, copy.Groups);
        Assert.NotSame(shared, copy.Groups["a"]);
        Assert.Equal([1, 2], copy.Groups["a"]);
        copy.Groups["a"].Add(3);
        copy.Groups["b"] = [];
        Assert.Equal([1, 2], shared);
        Assert.False(bag.Groups.ContainsKey("b"));
        var payload = Assert.IsType<Payload>(copy.Anything);
        Assert.NotSame(bag.Anything, payload);
        Assert.Equal(["x"], payload.Items);
        Assert.Equal(new[] { "f" }, copy.Frozen.ToArray());
        Assert.Equal(["a", "b"], copy.Groups.Keys.Order());

        var sorted = new SortedDictionary<int, Payload> { [1] = new Payload { Number = 1 } };
        Assert.Single(sorted.Values);
        var sortedCopy = DeepCopier.Copy(sorted);
        Assert.NotSame(sorted[1], sortedCopy[1]);
        Assert.Equal(1, sortedCopy[1].Number);
        var linked = new LinkedList<Payload>([new Payload { Number = 2 }]);
        var linkedCopy = DeepCopier.Copy(linked);
        Assert.NotSame(linked.First!.Value, linkedCopy.First!.Value);
        Assert.Equal(2, linkedCopy.First.Value.Number);
    }

    [Fact]
    public void Cyclic_graphs_are_refused_with_a_clear_error()
    {
        var node = new Node { Value = 1 };
        node.Next = node;
        var error = Assert.Throws<InvalidOperationException>(() => DeepCopier.Copy(node));
        Assert.Contains("cyclic", error.Message, StringComparison.Ordinal);

        // A long but acyclic chain below the limit copies fine.
        var head = new Node();
        var current = head;
        for (var i = 0; i < 100; i++)
        {
            current = current.Next = new Node { Value = i };
        }

        Assert.Equal(99, Last(DeepCopier.Copy(head)).Value);
        static Node Last(Node n) => n.Next is null ? n : Last(n.Next);
    }

    [Fact]
    public async Task A_call_encodes_to_a_message_and_the_decoded_message_runs()
    {
        await using var silo = await TestSilo.StartAsync();
        var runtime = silo.Services.GetRequiredService<SiloRuntime>();
        var codec = new MessageCodec(silo.Services.GetRequiredService<GrainJson>(), runtime.GrainFactory);
        var descriptor = (MethodDescriptor<Payload>)MethodDescriptor.Get(typeof(IEchoGrain).GetMethod(nameof(IEchoGrain.Mutate))!);
        var target = GrainId.Create("echo", "wire");
        var request = descriptor.CreateRequest(target, [new Payload { Number = 41, Items = ["a"] }]);
        request.Chain = new CallChainNode(GrainId.Create("ping", "caller"), null);
        request.Source = GrainId.Create("ping", "caller");
        request.RequestContext = ImmutableDictionary<string, object>.Empty.Add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").Add("n", 7L);

        var bytes = codec.Encode(request);
        var decoded = (Message<Payload>)codec.Decode(bytes);
        Assert.Equal(target, decoded.Target);
        Assert.Same(descriptor, decoded.Descriptor);
        Assert.Equal(request.Source, decoded.Source);
        Assert.Equal(["ping/caller"], decoded.Chain!.ToList().Select(g => g.ToString()));
        Assert.Equal(7L, decoded.RequestContext!["n"]);

        runtime.Send(decoded);
        var result = await decoded.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(42, result.Number);
        Assert.Equal(["a", "grain"], result.Items);
    }

    [Fact]
    public async Task A_grain_interface_with_a_non_async_method_is_refused_at_GetGrain()
    {
        await using var silo = await TestSilo.StartAsync();
        var runtime = silo.Services.GetRequiredService<SiloRuntime>();
        var error = Assert.Throws<InvalidOperationException>(() => runtime.GrainFactory.GetGrain(typeof(IBadGrain), GrainId.Create("bad", "1")));
        Assert.Contains("NotAsync", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SiloOptions_bind_from_the_Silo_configuration_section()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Silo:SiloName"] = "configured",
            ["Silo:ResponseTimeout"] = "00:00:05",
            ["Silo:CollectionAge"] = "00:02:00",
        });
        builder.UseSilo(silo => silo.AddGrain<EchoGrain>());
        using var host = builder.Build();
        var options = host.Services.GetRequiredService<IOptions<SiloOptions>>().Value;
        Assert.Equal("configured", options.SiloName);
        Assert.Equal(TimeSpan.FromSeconds(5), options.ResponseTimeout);
        Assert.Equal(TimeSpan.FromMinutes(2), options.CollectionAge);
        Assert.Equal(TimeSpan.FromSeconds(30), options.DeactivationTimeout);
    }

    [Fact]
    public void Invalid_options_are_refused_with_the_option_named()
    {
        var services = new ServiceCollection();
        services.AddSilo(silo => silo.AddGrain<EchoGrain>());
        services.Configure<SiloOptions>(o => o.ResponseTimeout = TimeSpan.Zero);
        using var provider = services.BuildServiceProvider();
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => provider.GetRequiredService<IGrainFactory>());
        Assert.Contains("ResponseTimeout", error.Message, StringComparison.Ordinal);
    }
}
