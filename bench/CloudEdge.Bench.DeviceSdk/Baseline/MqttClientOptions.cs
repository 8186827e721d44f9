using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using CloudEdge.Mqtt;

namespace CloudEdge.Bench.DeviceSdk.Baseline;

/// <summary>
/// Everything a <see cref="MqttClient"/> needs to reach and talk to a broker. Validated once, when the
/// client is constructed; a bad value is an <see cref="ArgumentException"/> naming the option.
/// </summary>
public sealed class MqttClientOptions
{
    public required string Host { get; init; }
    /// <summary>0 picks the IANA default: 1883, or 8883 with TLS.</summary>
    public int Port { get; init; }
    public required string ClientId { get; init; }
    public MqttProtocolVersion ProtocolVersion { get; init; } = MqttProtocolVersion.V500;
    public string? UserName { get; init; }
    public string? Password { get; init; }
    /// <summary>Applies to the first connection. Reconnects on v5 always resume the session (Clean Start 0); on 3.1.1 the Clean Session flag stays as given.</summary>
    public bool CleanStart { get; init; } = true;
    /// <summary>v5 Session Expiry Interval in seconds; 0 ends the session with the connection, <see cref="uint.MaxValue"/> never.</summary>
    public uint SessionExpiryInterval { get; init; }
    /// <summary>Whole seconds, at most 65535; zero turns keep-alive (and half-open detection) off. The server's Server Keep Alive wins.</summary>
    public TimeSpan KeepAlive { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Published by the server when the connection ends without a normal DISCONNECT.</summary>
    public MqttMessage? Will { get; init; }
    /// <summary>v5 Will Delay Interval in seconds.</summary>
    public uint? WillDelayInterval { get; init; }
    /// <summary>TLS is on by default (system trust store, server name = <see cref="Host"/>). Plain TCP needs an explicit <see cref="MqttTlsOptions.Disabled"/>.</summary>
    public MqttTlsOptions Tls { get; init; } = new();
    public MqttReconnectOptions Reconnect { get; init; } = new();
    /// <summary>Publishes that cannot go out yet (disconnected, or the server's Receive Maximum is used up) wait here.</summary>
    public int OfflineQueueCapacity { get; init; } = 10_000;
    public MqttOfflineQueueOverflow OfflineQueueOverflow { get; init; } = MqttOfflineQueueOverflow.DropOldest;
    /// <summary>Received messages waiting for the message handler; when full the socket is no longer read (TCP back-pressure).</summary>
    public int InboxCapacity { get; init; } = 1_000;
    /// <summary>Largest packet accepted from the server (v5 Maximum Packet Size); null accepts what the protocol allows.</summary>
    public uint? MaximumPacketSize { get; init; }
    /// <summary>Use v5 topic aliases when the server offers them (Topic Alias Maximum &gt; 0).</summary>
    public bool UseTopicAliases { get; init; } = true;
    /// <summary>After a reconnect that finds no session on the server, send the SUBSCRIBEs that were acknowledged before.</summary>
    public bool ResubscribeWhenSessionLost { get; init; } = true;

    internal int EffectivePort => Port != 0 ? Port : Tls.Enabled ? 8883 : 1883;

    internal ushort KeepAliveSeconds => (ushort)KeepAlive.TotalSeconds;

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(Host)) throw new ArgumentException("Host is required.", nameof(Host));
        if (Port is < 0 or > 65535) throw new ArgumentException($"Port {Port} is outside 0-65535.", nameof(Port));
        if (ClientId is null) throw new ArgumentException("ClientId is required (it may be empty on v5 to let the server assign one).", nameof(ClientId));
        if (ProtocolVersion is not (MqttProtocolVersion.V311 or MqttProtocolVersion.V500)) throw new ArgumentException($"Protocol version {ProtocolVersion} is not supported.", nameof(ProtocolVersion));
        if (ProtocolVersion == MqttProtocolVersion.V311 && ClientId.Length == 0 && !CleanStart) throw new ArgumentException("MQTT 3.1.1 needs a client id when Clean Session is off.", nameof(ClientId));
        if (ProtocolVersion == MqttProtocolVersion.V311 && Password is not null && UserName is null) throw new ArgumentException("MQTT 3.1.1 does not allow a password without a user name.", nameof(Password));
        if (KeepAlive < TimeSpan.Zero || KeepAlive.TotalSeconds > ushort.MaxValue || KeepAlive.Ticks % TimeSpan.TicksPerSecond != 0) throw new ArgumentException("KeepAlive must be whole seconds between 0 and 65535.", nameof(KeepAlive));
        if (ConnectTimeout <= TimeSpan.Zero) throw new ArgumentException("ConnectTimeout must be positive.", nameof(ConnectTimeout));
        if (OfflineQueueCapacity < 1) throw new ArgumentException("OfflineQueueCapacity must be at least 1.", nameof(OfflineQueueCapacity));
        if (InboxCapacity < 1) throw new ArgumentException("InboxCapacity must be at least 1.", nameof(InboxCapacity));
        if (MaximumPacketSize is 0) throw new ArgumentException("MaximumPacketSize must be positive.", nameof(MaximumPacketSize));
        if (Tls is null) throw new ArgumentException("Tls is required; use MqttTlsOptions.Disabled for plain TCP.", nameof(Tls));
        if (Will is { } will && !MqttTopic.IsValidTopicName(will.Topic)) throw new ArgumentException($"Will topic '{will.Topic}' is not a valid topic name.", nameof(Will));
        Reconnect.Validate();
    }
}

/// <summary>TLS for the broker connection: server validation against the system store or a private CA, optional client certificate.</summary>
public sealed class MqttTlsOptions
{
    /// <summary>Plain TCP: only for loopback, test rigs, or networks that are encrypted below MQTT.</summary>
    public static MqttTlsOptions Disabled { get; } = new() { Enabled = false };

    public bool Enabled { get; init; } = true;
    /// <summary>Name the server certificate must carry (SNI too); defaults to <see cref="MqttClientOptions.Host"/>.</summary>
    public string? TargetHost { get; init; }
    /// <summary>When set, the server chain must end at this CA (and only this one), not at the system store.</summary>
    public X509Certificate2? TrustedCa { get; init; }
    /// <summary>The device certificate with its private key, for brokers that require client certificates.</summary>
    public X509Certificate2? ClientCertificate { get; init; }
    public SslProtocols EnabledProtocols { get; init; } = SslProtocols.None;
    /// <summary>Replaces the built-in validation entirely; for pinning. Leave null unless you know why.</summary>
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; init; }
}

public sealed class MqttReconnectOptions
{
    public bool Enabled { get; init; } = true;
    public TimeSpan InitialDelay { get; init; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan MaximumDelay { get; init; } = TimeSpan.FromSeconds(30);

    internal void Validate()
    {
        if (InitialDelay <= TimeSpan.Zero) throw new ArgumentException("Reconnect.InitialDelay must be positive.", nameof(InitialDelay));
        if (MaximumDelay < InitialDelay) throw new ArgumentException("Reconnect.MaximumDelay must not be below InitialDelay.", nameof(MaximumDelay));
    }
}

/// <summary>What happens to a publish that finds the offline queue full. Either way the dropped publish's task fails
/// with <see cref="MqttMessageDroppedException"/> and the <c>cloudedge.devicesdk.offline_queue.dropped</c> counter grows.</summary>
public enum MqttOfflineQueueOverflow
{
    /// <summary>The oldest waiting publish is dropped to make room: telemetry favours fresh readings.</summary>
    DropOldest,
    /// <summary>The new publish is refused.</summary>
    RejectNew,
}
