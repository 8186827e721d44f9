using CloudEdge.Runtime.References;

namespace CloudEdge.Runtime;

/// <summary>Hands out grain references for this silo; a DI singleton usable anywhere.</summary>
internal sealed class GrainFactory(SiloRuntime runtime) : IGrainFactory
{
    public TGrainInterface GetGrain<TGrainInterface>(string primaryKey)
        where TGrainInterface : IGrainWithStringKey
    {
        ArgumentNullException.ThrowIfNull(primaryKey);
        return Create<TGrainInterface>(GrainId.Create(runtime.Registry.GetGrainType(typeof(TGrainInterface)), primaryKey));
    }

    public TGrainInterface GetGrain<TGrainInterface>(Guid primaryKey)
        where TGrainInterface : IGrainWithGuidKey =>
        Create<TGrainInterface>(GrainId.Create(runtime.Registry.GetGrainType(typeof(TGrainInterface)), primaryKey));

    public TGrainInterface GetGrain<TGrainInterface>(long primaryKey)
        where TGrainInterface : IGrainWithIntegerKey =>
        Create<TGrainInterface>(GrainId.Create(runtime.Registry.GetGrainType(typeof(TGrainInterface)), primaryKey));

    public TGrainInterface GetGrain<TGrainInterface>(GrainId grainId)
        where TGrainInterface : IGrain
    {
        if (grainId.IsDefault)
        {
            throw new ArgumentException("The grain id is empty.", nameof(grainId));
        }

        Validate(typeof(TGrainInterface), grainId);
        return Create<TGrainInterface>(grainId);
    }

    /// <summary>A reference of a grain interface known only at run time (used when rehydrating stored references).</summary>
    public object GetGrain(Type grainInterface, GrainId grainId)
    {
        Validate(grainInterface, grainId);
        return GrainReference.Create(grainInterface, grainId, runtime);
    }

    /// <summary>A reference by id must name a grain whose class implements the interface.</summary>
    internal void Validate(Type grainInterface, GrainId grainId)
    {
        if (runtime.Registry.TryGetClass(grainId.Type, out var grainClass) && !grainInterface.IsAssignableFrom(grainClass.ClassType))
        {
            throw new ArgumentException($"Grain {grainId} is a {grainClass.ClassType.Name}, which does not implement {grainInterface.Name}.", nameof(grainId));
        }
    }

    private TGrainInterface Create<TGrainInterface>(GrainId grainId) =>
        (TGrainInterface)GrainReference.Create(typeof(TGrainInterface), grainId, runtime);
}
