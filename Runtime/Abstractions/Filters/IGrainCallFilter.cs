using System.Reflection;

namespace CloudEdge.Runtime;

/// <summary>A grain call as seen by call filters.</summary>
public interface IGrainCallContext
{
    /// <summary>The grain instance for incoming calls; null for outgoing calls.</summary>
    object? Grain { get; }

    /// <summary>The calling grain, when the call comes from a grain.</summary>
    GrainId? SourceId { get; }

    GrainId TargetId { get; }

    /// <summary>The grain interface method being called.</summary>
    MethodInfo InterfaceMethod { get; }

    string InterfaceName { get; }

    string MethodName { get; }

    int ArgumentCount { get; }

    object? GetArgument(int index);

    /// <summary>The call's result once <see cref="Invoke"/> has completed; a filter may replace it.</summary>
    object? Result { get; set; }

    /// <summary>Calls the next filter, or the grain method (incoming) or the transport (outgoing).</summary>
    Task Invoke();
}

public interface IIncomingGrainCallContext : IGrainCallContext;

public interface IOutgoingGrainCallContext : IGrainCallContext;

/// <summary>Runs around every call a grain receives, inside the grain's turn.</summary>
public interface IIncomingGrainCallFilter
{
    Task Invoke(IIncomingGrainCallContext context);
}

/// <summary>Runs around every call made through a grain reference, in the caller's context.</summary>
public interface IOutgoingGrainCallFilter
{
    Task Invoke(IOutgoingGrainCallContext context);
}
