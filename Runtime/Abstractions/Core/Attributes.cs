namespace CloudEdge.Runtime;

/// <summary>Names the grain type used in <see cref="GrainId"/>s. Without it, the class name less a "Grain" suffix, lower-cased.</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class GrainTypeAttribute(string grainType) : Attribute
{
    public string GrainType { get; } = grainType;
}

/// <summary>The grain's calls may interleave: a turn waiting on I/O lets other calls in.</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = true)]
public sealed class ReentrantAttribute : Attribute;

/// <summary>This interface method interleaves with any other call, whatever the grain's reentrancy.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class AlwaysInterleaveAttribute : Attribute;

/// <summary>This interface method does not change state: read-only calls interleave with each other.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ReadOnlyAttribute : Attribute;

/// <summary>The caller does not wait for this call: it returns as soon as the call is queued. The method must return Task or ValueTask.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class OneWayAttribute : Attribute;

/// <summary>
/// Values of this type (or this parameter or return value) are never mutated after they are sent,
/// so the runtime passes them across the grain boundary without copying.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct | AttributeTargets.Parameter | AttributeTargets.ReturnValue | AttributeTargets.Method)]
public sealed class ImmutableAttribute : Attribute;

/// <summary>Wraps a value that the sender promises not to mutate, so it crosses the grain boundary uncopied.</summary>
public readonly record struct Immutable<T>(T Value);

/// <summary>Extension to wrap a value as <see cref="Immutable{T}"/>.</summary>
public static class ImmutableExtensions
{
    public static Immutable<T> AsImmutable<T>(this T value) => new(value);
}
