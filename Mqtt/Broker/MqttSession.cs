namespace CloudEdge.Mqtt.Broker;

/// <summary>
/// Server-side session state (section 4.1): subscriptions, queued and in-flight QoS 1/2 messages, and
/// QoS 2 packet ids received but not yet released. Outlives connections when its expiry interval allows.
/// Every member is guarded by <see cref="Gate"/>.
/// </summary>
internal sealed class MqttSession(string clientId, string? userName)
{
    public string ClientId { get; } = clientId;
    public string? UserName { get; set; } = userName;
    public Lock Gate { get; } = new();
    public Dictionary<string, MqttSubscriptionEntry> Subscriptions { get; } = new(StringComparer.Ordinal);
    public Queue<MqttDelivery> Pending { get; } = new();
    public OrderedDictionary<ushort, MqttInflight> Inflight { get; } = new();
    public HashSet<ushort> IncomingQoS2 { get; } = [];
    public MqttConnection? Connection { get; set; }
    public bool IsConnected => Volatile.Read(ref _connected);
    public uint ExpiryInterval { get; set; }
    public long DisconnectedAt { get; set; }
    public MqttApplicationMessage? PendingWill { get; set; }
    public long PendingWillDueAt { get; set; }
    public bool Ended { get; set; }
    public long DropsSinceLog { get; set; }
    /// <summary>Completed when a congested queue has drained to half the back-pressure length (or the session detaches).</summary>
    public TaskCompletionSource? Drained { get; set; }
    public long CongestedSince { get; set; }

    /// <summary>Releases publishers waiting on this session; the caller holds <see cref="Gate"/>.</summary>
    public void ReleaseWaiters()
    {
        Drained?.TrySetResult();
        Drained = null;
        CongestionTimer?.Dispose();
        CongestionTimer = null;
    }

    /// <summary>Ends the wait of a congestion episode after the maximum wait, whatever the queue does.</summary>
    public ITimer? CongestionTimer { get; set; }

    private bool _connected;
    private ushort _nextPacketId;

    public void SetConnected(bool connected) => Volatile.Write(ref _connected, connected);

    /// <summary>Next packet id not in flight; the caller holds <see cref="Gate"/> and has checked the window.</summary>
    public ushort NextPacketId()
    {
        for (var i = 0; i < 65536; i++)
        {
            _nextPacketId++;
            if (_nextPacketId == 0) _nextPacketId = 1;
            if (!Inflight.ContainsKey(_nextPacketId)) return _nextPacketId;
        }
        throw new InvalidOperationException("No free packet identifier.");
    }
}
