namespace CloudEdge.Mqtt.Broker;

/// <summary>Broker configuration (options pattern: <c>services.AddMqttBroker(o =&gt; ...)</c>).</summary>
public sealed class MqttBrokerOptions
{
    /// <summary>Clients without credentials are refused unless this is true.</summary>
    public bool AllowAnonymous { get; set; }

    /// <summary>A TLS client certificate accepted by the listener authenticates its client; the user name is the certificate's CN.</summary>
    public bool AllowClientCertificateAuthentication { get; set; } = true;

    /// <summary>User name to password hash (<see cref="MqttPasswordHasher"/>); clear passwords are never stored.</summary>
    public Dictionary<string, string> Users { get; } = new(StringComparer.Ordinal);

    /// <summary>Allow rules. Empty: every authenticated client may publish and subscribe anywhere. Otherwise deny unless a rule allows.</summary>
    public List<MqttAclRule> AclRules { get; } = [];

    /// <summary>Largest packet accepted from a client (fixed header included); larger ones get 0x95.</summary>
    public int MaximumPacketSize { get; set; } = 1024 * 1024;

    /// <summary>QoS 1/2 PUBLISH packets a client may have unacknowledged toward the broker (v5 Receive Maximum).</summary>
    public ushort ReceiveMaximum { get; set; } = 1024;

    /// <summary>Topic aliases a client may set toward the broker.</summary>
    public ushort TopicAliasMaximum { get; set; } = 64;

    /// <summary>When set, overrides the client's keep-alive (sent as Server Keep Alive on v5).</summary>
    public ushort? ServerKeepAlive { get; set; }

    /// <summary>Upper bound applied to a session's expiry interval (seconds), also to 3.1.1 persistent sessions,
    /// which otherwise never expire. Default: no bound.</summary>
    public uint MaximumSessionExpiryInterval { get; set; } = uint.MaxValue;

    /// <summary>Messages queued per session (not yet sent, or waiting for the client's receive window).
    /// When full, the newest message is dropped, counted and logged.</summary>
    public int MaximumQueuedMessagesPerSession { get; set; } = 10_000;

    /// <summary>
    /// Queue length at which a connected subscriber pushes back on publishers: a publisher whose message lands in
    /// such a queue waits (its socket is not read, its acknowledgement is held) until the queue is half drained,
    /// at most <see cref="BackpressureMaxWait"/>. A subscriber that stays congested longer is treated as stuck:
    /// nobody waits for it any more and its bounded queue's drop policy applies.
    /// </summary>
    public int BackpressureQueueLength { get; set; } = 1000;

    public TimeSpan BackpressureMaxWait { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Subscriptions one session may hold; further new filters get SUBACK 0x97 (Quota exceeded; 0x80 on 3.1.1).</summary>
    public int MaximumSubscriptionsPerSession { get; set; } = 1000;

    /// <summary>Retained messages kept; when full, new retained topics are refused (counted and logged).</summary>
    public int MaximumRetainedMessages { get; set; } = 100_000;

    /// <summary>Time allowed between accepting the connection and receiving CONNECT.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often expired sessions and delayed wills are processed.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Response Information sent in CONNACK to v5 clients that ask for it (Request Response Information = 1): the
    /// base of response topics, "{clientid}" substituted, e.g. "replies/{clientid}/". Null: never sent (allowed).
    /// </summary>
    public string? ResponseInformation { get; set; }

    /// <summary>
    /// With a store (<see cref="IMqttBrokerStore"/>): how often changed sessions and retained messages are written,
    /// as one atomic batch (group commit). A process kill or power loss loses at most this interval's changes.
    /// </summary>
    public TimeSpan PersistenceFlushInterval { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Throws for values the protocol cannot express or the broker cannot work with.</summary>
    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok) throw new ArgumentOutOfRangeException(null, message);
        }
        Check(MaximumPacketSize is >= 64 and <= MqttPacketReader.ProtocolMaximumPacketSize, $"MaximumPacketSize must be 64..{MqttPacketReader.ProtocolMaximumPacketSize}.");
        Check(ReceiveMaximum > 0, "ReceiveMaximum must be at least 1.");
        Check(MaximumQueuedMessagesPerSession > 0, "MaximumQueuedMessagesPerSession must be at least 1.");
        Check(MaximumRetainedMessages >= 0, "MaximumRetainedMessages cannot be negative.");
        Check(MaximumSubscriptionsPerSession > 0, "MaximumSubscriptionsPerSession must be at least 1.");
        Check(BackpressureQueueLength > 1, "BackpressureQueueLength must be at least 2.");
        Check(BackpressureMaxWait >= TimeSpan.Zero, "BackpressureMaxWait cannot be negative.");
        Check(ConnectTimeout > TimeSpan.Zero && SweepInterval > TimeSpan.Zero, "ConnectTimeout and SweepInterval must be positive.");
        Check(PersistenceFlushInterval > TimeSpan.Zero && PersistenceFlushInterval <= TimeSpan.FromMinutes(1), "PersistenceFlushInterval must be above 0 and at most 1 minute.");
        foreach (var rule in AclRules)
        {
            var probe = rule.Topic.Replace("{clientid}", "x", StringComparison.Ordinal).Replace("{username}", "x", StringComparison.Ordinal);
            Check(MqttTopic.IsValidTopicFilter(probe), $"ACL topic '{rule.Topic}' is not a valid topic filter.");
        }
    }
}

[Flags]
public enum MqttAclAccess
{
    Publish = 1,
    Subscribe = 2,
    PublishAndSubscribe = Publish | Subscribe,
}

/// <summary>
/// An allow rule. <see cref="Topic"/> is a topic filter in which <c>{clientid}</c> and <c>{username}</c>
/// are replaced by the client's values; a rule never applies when a substituted value is empty or contains
/// '/', '+' or '#' (so a client id cannot widen its own rule).
/// </summary>
public sealed class MqttAclRule
{
    public MqttAclAccess Access { get; set; } = MqttAclAccess.PublishAndSubscribe;
    /// <summary>Null: any user.</summary>
    public string? UserName { get; set; }
    /// <summary>Null: any client id.</summary>
    public string? ClientId { get; set; }
    public string Topic { get; set; } = "";
}
