using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Net = MQTTnet;
using NetFormatter = MQTTnet.Formatter;
using NetPackets = MQTTnet.Packets;
using NetProtocol = MQTTnet.Protocol;

namespace CloudEdge.DeviceSdk;

/// <summary>Translates between the SDK's public types and MQTTnet's; the only place both vocabularies meet.</summary>
internal static class MqttNetMapping
{
    public static Net.MqttClientOptions ClientOptions(MqttClientOptions options, bool cleanStart)
    {
        var v5 = options.ProtocolVersion == MqttProtocolVersion.V500;
        var tcp = new Net.MqttClientTcpOptions
        {
            RemoteEndpoint = new DnsEndPoint(options.Host, options.EffectivePort),
            NoDelay = true,
            TlsOptions = TlsOptions(options),
        };
        var net = new Net.MqttClientOptions
        {
            ChannelOptions = tcp,
            // One write per packet: with NoDelay, MQTTnet's default (header, then payload) costs two TCP segments.
            AllowPacketFragmentation = false,
            // The mapping below sets v5-only fields only on v5; MQTTnet need not check every publish again.
            ValidateFeatures = false,
            ClientId = options.ClientId,
            ProtocolVersion = v5 ? NetFormatter.MqttProtocolVersion.V500 : NetFormatter.MqttProtocolVersion.V311,
            CleanSession = cleanStart,
            SessionExpiryInterval = v5 ? options.SessionExpiryInterval : 0,
            KeepAlivePeriod = options.KeepAlive,
            Timeout = options.ConnectTimeout,
            MaximumPacketSize = v5 ? options.MaximumPacketSize ?? 0 : 0,
            // Received PUBLISHes wait in the SDK's inbox; the server may have as many unacknowledged as it holds.
            ReceiveMaximum = v5 ? (ushort)Math.Min(options.InboxCapacity, ushort.MaxValue) : (ushort)0,
        };
        if (options.UserName is not null || options.Password is not null)
        {
            net.Credentials = new Net.MqttClientCredentials(options.UserName ?? "", options.Password is null ? null : System.Text.Encoding.UTF8.GetBytes(options.Password));
        }
        if (options.Will is { } will)
        {
            net.WillTopic = will.Topic;
            net.WillPayload = will.Payload.ToArray();
            net.WillQualityOfServiceLevel = (NetProtocol.MqttQualityOfServiceLevel)will.QoS;
            net.WillRetain = will.Retain;
            if (v5)
            {
                net.WillDelayInterval = options.WillDelayInterval ?? 0;
                net.WillContentType = will.ContentType;
                net.WillResponseTopic = will.ResponseTopic;
                net.WillCorrelationData = will.CorrelationData?.ToArray();
                net.WillMessageExpiryInterval = will.MessageExpiryInterval ?? 0;
                net.WillPayloadFormatIndicator = (NetProtocol.MqttPayloadFormatIndicator)will.PayloadFormat;
                if (will.UserProperties.Count > 0) net.WillUserProperties = will.UserProperties.Select(p => UserProperty(p.Name, p.Value)).ToList();
            }
        }
        return net;
    }

    private static Net.MqttClientTlsOptions TlsOptions(MqttClientOptions options)
    {
        var tls = options.Tls;
        if (!tls.Enabled) return new Net.MqttClientTlsOptions { UseTls = false };
        var net = new Net.MqttClientTlsOptions
        {
            UseTls = true,
            TargetHost = tls.TargetHost ?? options.Host,
            SslProtocol = tls.EnabledProtocols,
            // Revocation lists are not reachable from loopback rigs or most device networks.
            RevocationMode = X509RevocationMode.NoCheck,
        };
        if (tls.ClientCertificate is { } certificate) net.ClientCertificatesProvider = new ClientCertificates(certificate);
        if (tls.ServerCertificateValidation is { } custom)
        {
            net.CertificateValidationHandler = e => custom(e, e.Certificate, e.Chain, e.SslPolicyErrors);
        }
        else if (tls.TrustedCa is { } ca)
        {
            net.CertificateValidationHandler = e => ValidateAgainst(ca, e.Certificate, e.SslPolicyErrors);
        }
        return net;
    }

    /// <summary>The chain must end at the private CA alone; name mismatches and every other error still fail.</summary>
    private static bool ValidateAgainst(X509Certificate2 ca, X509Certificate? presented, SslPolicyErrors errors)
    {
        if (presented is null) return false;
        if ((errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var certificate = new X509Certificate2(presented);
        return chain.Build(certificate);
    }

    private sealed class ClientCertificates(X509Certificate2 certificate) : Net.IMqttClientCertificatesProvider
    {
        public X509CertificateCollection GetCertificates() => [certificate];
    }

    public static Net.MqttApplicationMessage ApplicationMessage(PendingPublish pending, bool v5, string topic, ushort topicAlias)
    {
        var message = pending.Message;
        var net = new Net.MqttApplicationMessage
        {
            Topic = topic,
            TopicAlias = topicAlias,
            Payload = new ReadOnlySequence<byte>(message.Payload),
            QualityOfServiceLevel = (NetProtocol.MqttQualityOfServiceLevel)message.QoS,
            Retain = message.Retain,
        };
        if (!v5) return net;
        net.PayloadFormatIndicator = (NetProtocol.MqttPayloadFormatIndicator)message.PayloadFormat;
        net.ContentType = message.ContentType;
        net.MessageExpiryInterval = message.MessageExpiryInterval ?? 0;
        net.ResponseTopic = message.ResponseTopic;
        net.CorrelationData = message.CorrelationData?.ToArray();
        List<NetPackets.MqttUserProperty>? properties = null;
        foreach (var p in message.UserProperties) (properties ??= []).Add(UserProperty(p.Name, p.Value));
        // The caller's own traceparent wins: it may be forwarding someone else's context.
        if (pending.TraceParent is { } traceParent && message.GetUserProperty("traceparent") is null)
        {
            (properties ??= []).Add(UserProperty("traceparent", traceParent));
            if (!string.IsNullOrEmpty(pending.TraceState)) properties.Add(UserProperty("tracestate", pending.TraceState));
        }
        net.UserProperties = properties;
        return net;
    }

    /// <summary>An upper bound of the PUBLISH's encoded size, for the server's Maximum Packet Size.</summary>
    public static long EstimatedSize(PendingPublish pending, bool v5)
    {
        var m = pending.Message;
        long size = 5 + 2 + System.Text.Encoding.UTF8.GetByteCount(m.Topic) + 2 + m.Payload.Length;
        if (!v5) return size;
        size += 4 + 2 + 5 + (m.ContentType is null ? 0 : 3 + System.Text.Encoding.UTF8.GetByteCount(m.ContentType))
            + (m.ResponseTopic is null ? 0 : 3 + System.Text.Encoding.UTF8.GetByteCount(m.ResponseTopic)) + (m.CorrelationData is { } c ? 3 + c.Length : 0);
        foreach (var p in m.UserProperties) size += 5 + System.Text.Encoding.UTF8.GetByteCount(p.Name) + System.Text.Encoding.UTF8.GetByteCount(p.Value);
        if (pending.TraceParent is { } tp) size += 5 + 11 + tp.Length + (pending.TraceState is { } ts ? 5 + 10 + ts.Length : 0);
        return size;
    }

    public static MqttMessage Received(Net.MqttApplicationMessage m) => new()
    {
        Topic = m.Topic,
        Payload = m.Payload.ToArray(),
        QoS = (MqttQualityOfService)m.QualityOfServiceLevel,
        Retain = m.Retain,
        Dup = m.Dup,
        PayloadFormat = (MqttPayloadFormat)m.PayloadFormatIndicator,
        ContentType = m.ContentType,
        MessageExpiryInterval = m.MessageExpiryInterval == 0 ? null : m.MessageExpiryInterval,
        ResponseTopic = m.ResponseTopic,
        CorrelationData = m.CorrelationData,
        UserProperties = m.UserProperties?.Select(p => new MqttUserProperty(p.Name, NetPackets.MqttUserPropertyExtensions.ReadValueAsString(p))).ToArray() ?? [],
    };

    public static NetPackets.MqttTopicFilter TopicFilter(MqttSubscription s, bool v5) => new()
    {
        Topic = s.TopicFilter,
        QualityOfServiceLevel = (NetProtocol.MqttQualityOfServiceLevel)s.QoS,
        NoLocal = v5 && s.NoLocal,
        RetainAsPublished = v5 && s.RetainAsPublished,
        RetainHandling = v5 ? (NetProtocol.MqttRetainHandling)s.RetainHandling : NetProtocol.MqttRetainHandling.SendAtSubscribe,
    };

    public static MqttConnectResult ConnectResult(Net.MqttClientConnectResult r, MqttClientOptions options)
    {
        var v5 = options.ProtocolVersion == MqttProtocolVersion.V500;
        return new MqttConnectResult(
            r.IsSessionPresent,
            (MqttReasonCode)(byte)r.ResultCode,
            r.AssignedClientIdentifier ?? options.ClientId,
            r.ServerKeepAlive > 0 ? TimeSpan.FromSeconds(r.ServerKeepAlive) : options.KeepAlive,
            r.ReceiveMaximum is { } receive and > 0 ? receive : ushort.MaxValue,
            r.MaximumPacketSize is { } size and > 0 ? size : MaximumPacketSizeOfProtocol,
            r.TopicAliasMaximum,
            // MQTTnet leaves 3.1.1's (absent) Maximum QoS at 0; 3.1.1 servers take every QoS.
            v5 ? (MqttQualityOfService)r.MaximumQoS : MqttQualityOfService.ExactlyOnce,
            !v5 || r.RetainAvailable);
    }

    private static NetPackets.MqttUserProperty UserProperty(string name, string value) =>
        new(name, new ReadOnlyMemory<byte>(System.Text.Encoding.UTF8.GetBytes(value)));

    /// <summary>268,435,455 bytes of remaining length plus the largest fixed header.</summary>
    public const uint MaximumPacketSizeOfProtocol = 268_435_460;
}
