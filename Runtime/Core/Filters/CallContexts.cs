using System.Reflection;
using CloudEdge.Runtime.Activation;
using CloudEdge.Runtime.Messaging;

namespace CloudEdge.Runtime.Filters;

/// <summary>An incoming call walking the incoming filter pipeline, ending in the grain method.</summary>
internal sealed class IncomingCallContext<TResult>(Message<TResult> message, ActivationData activation) : IIncomingGrainCallContext
{
    private int next;

    public object? Grain => activation.GrainInstance;

    public GrainId? SourceId => message.Source;

    public GrainId TargetId => message.Target;

    public MethodInfo InterfaceMethod => message.Descriptor.Method;

    public string InterfaceName => message.Descriptor.InterfaceName;

    public string MethodName => message.Descriptor.MethodName;

    public int ArgumentCount => message.Arguments.Length;

    public object? Result { get; set; }

    public object? GetArgument(int index) => message.Arguments[index];

    public Task Invoke()
    {
        var filters = activation.Runtime.IncomingFilters;
        if (next < filters.Length)
        {
            return filters[next++].Invoke(this);
        }

        next++;
        return InvokeGrain();
    }

    private async Task InvokeGrain() => Result = await message.Descriptor.Invoker(activation.GrainInstance!, message.Arguments);
}

/// <summary>An outgoing call walking the outgoing filter pipeline, ending in the transport.</summary>
internal sealed class OutgoingCallContext<TResult>(Message<TResult> message, SiloRuntime runtime) : IOutgoingGrainCallContext
{
    private int next;

    public object? Grain => null;

    public GrainId? SourceId => message.Source;

    public GrainId TargetId => message.Target;

    public MethodInfo InterfaceMethod => message.Descriptor.Method;

    public string InterfaceName => message.Descriptor.InterfaceName;

    public string MethodName => message.Descriptor.MethodName;

    public int ArgumentCount => message.Arguments.Length;

    public object? Result { get; set; }

    public Message<TResult> Message => message;

    public object? GetArgument(int index) => message.Arguments[index];

    public Task Invoke()
    {
        var filters = runtime.OutgoingFilters;
        if (next < filters.Length)
        {
            return filters[next++].Invoke(this);
        }

        next++;
        return Send();
    }

    private async Task Send()
    {
        // Filters may have added values (a tenant, a trace context): the message carries what they left.
        message.RequestContext = RequestContext.Export();
        runtime.Send(message);
        if (message.Descriptor.OneWay && !message.IsCompleted)
        {
            // Queued: a one-way caller waits no further (a refused call falls through and throws).
            return;
        }

        Result = await message.Task.ConfigureAwait(false);
    }
}
