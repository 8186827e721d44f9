namespace CloudEdge.Runtime;

/// <summary>A grain call did not complete within its timeout.</summary>
public sealed class GrainCallTimeoutException : TimeoutException
{
    public GrainCallTimeoutException(string message) : base(message) { }

    public GrainCallTimeoutException(GrainId target, string method, TimeSpan timeout)
        : base($"Call to {target}.{method} did not complete within {timeout.TotalSeconds:0.###} s.")
    {
        Target = target;
        Method = method;
        Timeout = timeout;
    }

    public GrainId Target { get; }

    public string Method { get; } = string.Empty;

    public TimeSpan Timeout { get; }
}

/// <summary>
/// A call would wait on a non-reentrant grain that is itself waiting, directly or indirectly, on the
/// caller (A → B → A). Thrown at once instead of hanging until the call times out.
/// </summary>
public sealed class DeadlockException : Exception
{
    public DeadlockException(string message) : base(message) { CallChain = []; }

    public DeadlockException(IReadOnlyList<GrainId> callChain)
        : base($"Call cycle between non-reentrant grains: {string.Join(" -> ", callChain)}. " +
               "Mark a grain [Reentrant] or a method [AlwaysInterleave], or break the cycle.")
    {
        CallChain = callChain;
    }

    /// <summary>The grains of the cycle, from the first caller to the grain called again.</summary>
    public IReadOnlyList<GrainId> CallChain { get; }
}

/// <summary>A grain storage write found another ETag than the one the grain read: someone else wrote first.</summary>
public sealed class InconsistentStateException : Exception
{
    public InconsistentStateException(string message) : base(message) { }

    public InconsistentStateException(string message, string? storedEtag, string? currentEtag)
        : base($"{message} Stored ETag: '{storedEtag ?? "(none)"}', the grain's ETag: '{currentEtag ?? "(none)"}'.")
    {
        StoredEtag = storedEtag;
        CurrentEtag = currentEtag;
    }

    public string? StoredEtag { get; }

    public string? CurrentEtag { get; }
}

/// <summary>The silo is shutting down or cannot host the grain right now; the call may be retried.</summary>
public sealed class SiloUnavailableException(string message) : Exception(message);
