namespace CloudEdge.Runtime;

/// <summary>
/// Hands out grain references. A reference is cheap, can be created anywhere (API handlers, other
/// grains, background services, tests), passed as an argument and stored in state; the grain it names
/// is activated on the first call.
/// </summary>
public interface IGrainFactory
{
    TGrainInterface GetGrain<TGrainInterface>(string primaryKey)
        where TGrainInterface : IGrainWithStringKey;

    TGrainInterface GetGrain<TGrainInterface>(Guid primaryKey)
        where TGrainInterface : IGrainWithGuidKey;

    TGrainInterface GetGrain<TGrainInterface>(long primaryKey)
        where TGrainInterface : IGrainWithIntegerKey;

    /// <summary>A reference to the grain with this id, typed as the given grain interface.</summary>
    TGrainInterface GetGrain<TGrainInterface>(GrainId grainId)
        where TGrainInterface : IGrain;
}
