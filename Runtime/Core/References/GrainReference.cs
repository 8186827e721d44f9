using System.Collections.Concurrent;
using System.Reflection;

namespace CloudEdge.Runtime.References;

/// <summary>
/// A grain reference: a proxy implementing the grain interface that turns each call into a request
/// for the grain it names. It holds only the grain id, the interface and the silo runtime, so it is
/// immutable, cheap, equal to any other reference to the same grain and interface, and crosses grain
/// boundaries uncopied.
/// </summary>
public class GrainReference : DispatchProxy, IGrainIdentity
{
    private static readonly ConcurrentDictionary<Type, bool> CheckedInterfaces = new();

    private GrainId grainId;
    private Type interfaceType = typeof(IGrain);
    private SiloRuntime? runtime;
    private MethodDescriptor? lastMethod;

    /// <summary>The activation this reference last delivered to (a hint; checked on every use).</summary>
    internal Activation.ActivationData? CachedActivation { get; set; }

    public GrainId GrainId => grainId;

    /// <summary>The grain interface this reference implements.</summary>
    public Type InterfaceType => interfaceType;

    internal SiloRuntime Runtime => runtime ?? throw new InvalidOperationException("This grain reference is not bound to a silo.");

    internal static object Create(Type interfaceType, GrainId grainId, SiloRuntime runtime)
    {
        if (!CheckedInterfaces.ContainsKey(interfaceType))
        {
            Validate(interfaceType);
            CheckedInterfaces.TryAdd(interfaceType, true);
        }

        var proxy = (GrainReference)DispatchProxy.Create(interfaceType, typeof(GrainReference));
        proxy.grainId = grainId;
        proxy.interfaceType = interfaceType;
        proxy.runtime = runtime;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        // Most references call one method over and over: remember the last descriptor.
        var last = lastMethod;
        var descriptor = last is not null && ReferenceEquals(last.Method, targetMethod) ? last : lastMethod = MethodDescriptor.Get(targetMethod);
        return descriptor.InvokeFromReference(this, args ?? []);
    }

    public override bool Equals(object? obj) => obj is GrainReference other && other.grainId == grainId && other.interfaceType == interfaceType;

    public override int GetHashCode() => grainId.GetHashCode();

    public override string ToString() => $"{interfaceType.Name}:{grainId}";

    private static void Validate(Type interfaceType)
    {
        if (!interfaceType.IsInterface || !typeof(IGrain).IsAssignableFrom(interfaceType))
        {
            throw new ArgumentException($"{interfaceType.Name} is not a grain interface (an interface extending IGrain).", nameof(interfaceType));
        }

        foreach (var type in interfaceType.GetInterfaces().Append(interfaceType))
        {
            if (type.GetProperties().Length > 0)
            {
                throw new ArgumentException($"Grain interface {type.Name} declares properties; grain interfaces may only declare methods returning Task or ValueTask.");
            }

            foreach (var method in type.GetMethods(BindingFlags.Public | BindingFlags.Instance))
            {
                MethodDescriptor.Get(method);
            }
        }
    }
}
