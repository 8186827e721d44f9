using System.Collections.Concurrent;
using CloudEdge.Runtime.Cluster;
using CloudEdge.Runtime.Messaging;

namespace CloudEdge.Runtime.Activation;

/// <summary>The activations of this silo, by grain id; creates an activation on the first request.</summary>
internal sealed class Catalog(SiloRuntime runtime)
{
    private readonly ConcurrentDictionary<GrainId, ActivationData> activations = new();
    private long nextActivationId;

    public int Count => activations.Count;

    public ICollection<ActivationData> All => activations.Values;

    public bool TryGet(GrainId grainId, out ActivationData activation) => activations.TryGetValue(grainId, out activation!);

    /// <summary>Hands a request to the grain's activation, creating it if needed; never drops the request.</summary>
    public void Deliver(Request request)
    {
        while (true)
        {
            if (!activations.TryGetValue(request.Target, out var activation))
            {
                if (!runtime.Registry.TryGetClass(request.Target.Type, out var grainClass))
                {
                    request.Fail(new ArgumentException(
                        $"No grain class is registered for grain type '{request.Target.Type}' (grain {request.Target}). Register it with silo.AddGrains(assembly) or silo.AddGrain<T>()."));
                    return;
                }

                var created = new ActivationData(runtime, grainClass, request.Target, Interlocked.Increment(ref nextActivationId));
                activation = activations.GetOrAdd(request.Target, created);
                if (ReferenceEquals(activation, created))
                {
                    runtime.Directory.Register(new GrainAddress(request.Target, runtime.SiloAddress, created.ActivationId));
                    created.Start();
                }
            }

            if (activation.TryEnqueue(request))
            {
                return;
            }

            // That activation finished deactivating between lookup and enqueue: look again.
            Thread.Yield();
        }
    }

    public void Remove(ActivationData activation)
    {
        if (activations.TryRemove(new KeyValuePair<GrainId, ActivationData>(activation.GrainId, activation)))
        {
            runtime.Directory.Unregister(new GrainAddress(activation.GrainId, runtime.SiloAddress, activation.ActivationId));
        }
    }
}
