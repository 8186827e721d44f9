using System.Reflection;
using CloudEdge.Runtime.Activation;
using CloudEdge.Runtime.Messaging;

namespace CloudEdge.Runtime.Filters;

/// <summary>What both filter pipelines show of a call: the message's identity, arguments and result.</summary>
internal abstract class GrainCallContext<TResult>(Message<TResult> message) : IGrainCallContext
{
    public Message<TResult> Message { get; } = message;

    public abstract object? Grain { get; }

    public GrainId? SourceId => Message.Source;

    public GrainId TargetId => Message.Target;

    public MethodInfo InterfaceMethod => Message.Descriptor.Method;

    public string InterfaceName => Message.Descriptor.InterfaceName;

    public string MethodName => Message.Descriptor.MethodName;

    public int ArgumentCount => Message.Arguments.Length;

    public object? Result { get; set; }

    public object? GetArgument(int index) => Message.Arguments[index];

    public abstract Task Invoke();
}

/// <summary>An incoming call walking the incoming filter pipeline, ending in the grain method.</summary>
internal sealed class IncomingCallContext<TResult>(Message<TResult> message, ActivationData activation)
    : GrainCallContext<TResult>(message), IIncomingGrainCallContext
{
    private int next;

    public override object? Grain => activation.GrainInstance;

    public override Task Invoke()
    {
        var filters = activation.Runtime.IncomingFilters;
        if (next < filters.Length)
        {
            return filters[next++].Invoke(this);
        }

        next++;
        return InvokeGrain();
    }

    private async Task InvokeGrain() => Result = await Message.Descriptor.Invoker(activation.GrainInstance!, Message.Arguments);
}

/// <summary>An outgoing call walking the outgoing filter pipeline, ending in the transport.</summary>
internal sealed class OutgoingCallContext<TResult>(Message<TResult> message, SiloRuntime runtime)
    : GrainCallContext<TResult>(message), IOutgoingGrainCallContext
{
    private int next;

    public override object? Grain => null;

    public override Task Invoke()
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
        Message.RequestContext = RequestContext.Export();
        runtime.Send(Message);
        if (Message.Descriptor.OneWay && !Message.IsCompleted)
        {
            // Queued: a one-way caller waits no further (a refused call falls through and throws).
            return;
        }

        Result = await Message.Task.ConfigureAwait(false);
    }
}
