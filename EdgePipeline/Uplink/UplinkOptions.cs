namespace CloudEdge.EdgePipeline.Uplink;

/// <summary>How the agent reaches the Silo (configuration section <c>EdgeAgent:Uplink</c>; docs/edge-agent.md).</summary>
public sealed class UplinkOptions
{
    /// <summary>The Silo's base address, e.g. https://silo.example:8443/ (HTTPS in production).</summary>
    public string SiloUrl { get; set; } = "";
    /// <summary>The gateway's JWT (role gateway, sub = gateway id). Or <see cref="TokenFile"/>, read on every request so it can be rotated.</summary>
    public string? Token { get; set; }
    public string? TokenFile { get; set; }
    /// <summary>PEM file of a private CA the Silo's certificate chains to (instead of the system store).</summary>
    public string? TrustedCaFile { get; set; }
    /// <summary>Items per request (the Silo accepts at most 1,000).</summary>
    public int MaxBatchItems { get; set; } = 500;
    /// <summary>Uncompressed body bytes per request, roughly (the Silo accepts at most 4 MiB).</summary>
    public long MaxBatchBytes { get; set; } = 1024 * 1024;
    /// <summary>Wait after summaries appear in an idle outbox so a request carries more than one; an alert ends it at once.</summary>
    public TimeSpan BatchDelay { get; set; } = TimeSpan.FromMilliseconds(200);
    /// <summary>Drain rate after an outage: a backlog goes out oldest first at most this fast (after a burst of one batch).</summary>
    public int MaxItemsPerSecond { get; set; } = 2000;
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);
    public int MaxRetryAttempts { get; set; } = 4;
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(30);
    /// <summary>How long the circuit stays open after the Silo kept failing.</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(30);
    /// <summary>Wait before trying again once retries are exhausted or the circuit is open.</summary>
    public TimeSpan OutageDelay { get; set; } = TimeSpan.FromSeconds(5);
}
