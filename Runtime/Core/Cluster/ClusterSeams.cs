using System.Collections.Concurrent;
using CloudEdge.Runtime.Messaging;

namespace CloudEdge.Runtime.Cluster;

/// <summary>The address of a silo. Single-silo today; a cluster adds endpoints and generations.</summary>
internal sealed record SiloAddress(string Name, string Endpoint, long Generation)
{
    public override string ToString() => $"{Name}@{Endpoint}#{Generation}";
}

/// <summary>Where a grain lives: its silo and activation.</summary>
internal readonly record struct GrainAddress(GrainId GrainId, SiloAddress Silo, long ActivationId);

/// <summary>Chooses the silo that hosts a new activation (Orleans' IPlacementDirector).</summary>
internal interface IPlacementDirector
{
    SiloAddress PlaceGrain(GrainId grainId, SiloAddress requestingSilo);
}

/// <summary>Maps grain ids to their single activation in the cluster (Orleans' IGrainDirectory).</summary>
internal interface IGrainDirectory
{
    /// <summary>Registers an activation; returns the address already registered when another won the race.</summary>
    GrainAddress Register(GrainAddress address);

    bool TryLookup(GrainId grainId, out GrainAddress address);

    void Unregister(GrainAddress address);
}

/// <summary>Carries requests to the silo that hosts their target (Orleans' message center).</summary>
internal interface IMessageTransport
{
    void Send(SiloAddress destination, Request request);
}

/// <summary>Places every grain on this silo.</summary>
internal sealed class LocalPlacementDirector : IPlacementDirector
{
    public SiloAddress PlaceGrain(GrainId grainId, SiloAddress requestingSilo) => requestingSilo;
}

/// <summary>The single-silo directory: an in-memory map, the same one a distributed directory would partition.</summary>
internal sealed class LocalGrainDirectory : IGrainDirectory
{
    private readonly ConcurrentDictionary<GrainId, GrainAddress> entries = new();

    public GrainAddress Register(GrainAddress address) => entries.GetOrAdd(address.GrainId, address);

    public bool TryLookup(GrainId grainId, out GrainAddress address) => entries.TryGetValue(grainId, out address);

    public void Unregister(GrainAddress address) =>
        entries.TryRemove(new KeyValuePair<GrainId, GrainAddress>(address.GrainId, address));
}

/// <summary>The single-silo transport: hands requests straight to the local catalog (no serialization; arguments were already copied).</summary>
internal sealed class LocalMessageTransport(Func<Activation.Catalog> catalog, SiloAddress self) : IMessageTransport
{
    public void Send(SiloAddress destination, Request request)
    {
        if (destination != self)
        {
            request.Fail(new SiloUnavailableException($"Silo {destination} is not reachable from single-silo {self}."));
            return;
        }

        catalog().Deliver(request);
    }
}
