namespace CloudEdge.Silo.Live;

/// <summary>Settings of the live (Server-Sent Events) endpoints, bound from the "Live" configuration section.</summary>
public sealed class LiveOptions
{
    public const string Section = "Live";

    /// <summary>Events buffered per connection between the stream and the client's socket.</summary>
    public int ClientBufferEvents { get; set; } = 1024;

    /// <summary>
    /// How long a full buffer may stay full before the client counts as slow and is disconnected. Only
    /// this connection's own subscription waits meanwhile; a short grace absorbs bursts without
    /// dropping a client that keeps up on average.
    /// </summary>
    public TimeSpan SlowClientGrace { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Live connections one caller (token subject) may hold at once.</summary>
    public int MaxConnectionsPerCaller { get; set; } = 16;

    /// <summary>How often a comment line is sent so that proxies keep an idle connection open.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>The reconnection delay suggested to EventSource clients (the <c>retry:</c> field).</summary>
    public TimeSpan ReconnectDelay { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>The most events <c>?replay=</c> may ask for.</summary>
    public const int MaxReplay = 1000;

    internal void Validate()
    {
        if (ClientBufferEvents < 1 || MaxConnectionsPerCaller < 1 || KeepAliveInterval <= TimeSpan.Zero
            || SlowClientGrace < TimeSpan.Zero || ReconnectDelay < TimeSpan.Zero)
        {
            throw new InvalidOperationException(
                "Live: ClientBufferEvents and MaxConnectionsPerCaller must be at least 1, KeepAliveInterval positive, SlowClientGrace and ReconnectDelay zero or more.");
        }
    }
}
