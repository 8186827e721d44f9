using System.Collections.Immutable;

namespace CloudEdge.Runtime.Messaging;

/// <summary>
/// One unit of work for an activation: a grain call (<see cref="Message{TResult}"/>) or a timer tick.
/// It carries what a remote message would: target, call chain, request context, deadline.
/// </summary>
internal abstract class Request
{
    private CallChainNode? outgoingChain;

    protected Request(GrainId target) => Target = target;

    /// <summary>The chain carried by calls this turn makes: this request's chain plus its own grain.</summary>
    public CallChainNode OutgoingChain => outgoingChain ??= new CallChainNode(Target, Chain);

    /// <summary>Set when the request's turn went asynchronous and the activation tracks it for timeouts.</summary>
    public bool TrackedInFlight { get; set; }

    /// <summary>Set when the activation ran this request on the sender's thread.</summary>
    public bool RanInline { get; set; }

    /// <summary>Whether an idle activation may run this request on the sender's thread.</summary>
    public virtual bool MayRunInline => false;

    /// <summary>Whether the request follows its grain to a new activation after the current one deactivates.</summary>
    public virtual bool Forwardable => true;

    public GrainId Target { get; }

    /// <summary>The grain that made the call, when it came from a grain.</summary>
    public GrainId? Source { get; set; }

    /// <summary>Grains waiting, directly or indirectly, on this call, most recent first.</summary>
    public CallChainNode? Chain { get; set; }

    public ImmutableDictionary<string, object>? RequestContext { get; set; }

    /// <summary>Whether a caller waits for this request, so that it must time out.</summary>
    public virtual bool TimesOut => false;

    /// <summary>TimeProvider timestamp after which the call times out; 0 while not stamped (a turn run at once is stamped only if it goes asynchronous).</summary>
    public long Deadline { get; set; }

    /// <summary>Interleaves with any turn (an [AlwaysInterleave] method or an interleaving timer).</summary>
    public abstract bool AlwaysInterleave { get; }

    /// <summary>Interleaves with other read-only turns.</summary>
    public abstract bool ReadOnly { get; }

    /// <summary>Counts as activity for idle collection.</summary>
    public virtual bool KeepsAlive => true;

    public abstract bool IsCompleted { get; }

    /// <summary>Interface.Method, for errors, logs and metrics.</summary>
    public abstract string DisplayName { get; }

    /// <summary>Runs the request as a turn of the activation, on the activation's scheduler.</summary>
    public abstract void Execute(Activation.ActivationData activation);

    /// <summary>Completes the request with an error without running it (rejection, timeout, deadlock).</summary>
    public abstract void Fail(Exception exception);

    /// <summary>Time-out: fail with <see cref="GrainCallTimeoutException"/> naming grain and method.</summary>
    public virtual void TimeOut(TimeSpan timeout) => Fail(new GrainCallTimeoutException(Target, DisplayName, timeout));
}

/// <summary>An immutable list of the grains waiting on a call, shared by every call made from a turn.</summary>
internal sealed class CallChainNode(GrainId grainId, CallChainNode? previous)
{
    public GrainId GrainId { get; } = grainId;

    public CallChainNode? Previous { get; } = previous;

    public bool Contains(GrainId id)
    {
        for (var node = this; node is not null; node = node.Previous)
        {
            if (node.GrainId == id)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The chain from the first caller to the most recent one.</summary>
    public List<GrainId> ToList()
    {
        var list = new List<GrainId>();
        for (var node = this; node is not null; node = node.Previous)
        {
            list.Add(node.GrainId);
        }

        list.Reverse();
        return list;
    }
}
