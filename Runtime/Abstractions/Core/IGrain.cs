namespace CloudEdge.Runtime;

/// <summary>Anything the runtime can address: grains and grain references.</summary>
public interface IAddressable;

/// <summary>Marker for grain interfaces. Use one of the keyed forms below.</summary>
public interface IGrain : IAddressable;

/// <summary>A grain whose primary key is a string.</summary>
public interface IGrainWithStringKey : IGrain;

/// <summary>A grain whose primary key is a <see cref="Guid"/>.</summary>
public interface IGrainWithGuidKey : IGrain;

/// <summary>A grain whose primary key is a <see cref="long"/>.</summary>
public interface IGrainWithIntegerKey : IGrain;

/// <summary>
/// Implemented by grain references and by <see cref="Grain"/>, so that identity can be read from
/// any <see cref="IAddressable"/> without knowing how the runtime built it.
/// </summary>
public interface IGrainIdentity
{
    GrainId GrainId { get; }
}
