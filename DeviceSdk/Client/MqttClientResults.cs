namespace CloudEdge.DeviceSdk;

/// <summary>What the server said in CONNACK, with its limits applied to this connection.</summary>
public sealed record MqttConnectResult(
    bool SessionPresent,
    MqttReasonCode ReasonCode,
    string ClientId,
    TimeSpan KeepAlive,
    ushort ReceiveMaximum,
    uint MaximumPacketSize,
    ushort TopicAliasMaximum,
    MqttQualityOfService MaximumQoS,
    bool RetainAvailable);

/// <summary>The outcome of one publish: Success for QoS 0 once written, else the server's PUBACK/PUBREC/PUBCOMP code.</summary>
public sealed record MqttPublishResult(MqttReasonCode ReasonCode, string? ReasonString = null)
{
    public bool IsSuccess => !ReasonCode.IsError();
}

/// <summary>One reason code per requested filter (granted QoS, or an error code at or above 0x80).</summary>
public sealed record MqttSubscribeResult(IReadOnlyList<MqttReasonCode> ReasonCodes, string? ReasonString = null);

public sealed record MqttUnsubscribeResult(IReadOnlyList<MqttReasonCode> ReasonCodes, string? ReasonString = null);

public enum MqttDisconnectReason
{
    /// <summary>The application called DisconnectAsync or disposed the client.</summary>
    ClientRequested,
    /// <summary>The server sent DISCONNECT (see <see cref="MqttDisconnectedEventArgs.ReasonCode"/>).</summary>
    ServerDisconnected,
    /// <summary>Nothing arrived for 1.5 times the keep-alive although PINGREQs went out: the connection is half-open.</summary>
    KeepAliveTimeout,
    /// <summary>The socket or TLS stream closed or failed.</summary>
    TransportClosed,
    /// <summary>The server sent something the protocol forbids; v5 got a DISCONNECT with the reason code.</summary>
    ProtocolError,
}

public sealed class MqttDisconnectedEventArgs(MqttDisconnectReason reason, MqttReasonCode? reasonCode, string? reasonString, Exception? exception, bool willReconnect) : EventArgs
{
    public MqttDisconnectReason Reason { get; } = reason;
    /// <summary>From the server's DISCONNECT, or the code we sent on a protocol error.</summary>
    public MqttReasonCode? ReasonCode { get; } = reasonCode;
    public string? ReasonString { get; } = reasonString;
    public Exception? Exception { get; } = exception;
    /// <summary>True when automatic reconnection is about to start.</summary>
    public bool WillReconnect { get; } = willReconnect;

    public override string ToString() =>
        $"{Reason}{(ReasonCode is { } c ? $" (0x{(byte)c:X2} {c})" : "")}{(ReasonString is null ? "" : $": {ReasonString}")}{(Exception is null ? "" : $": {Exception.Message}")}";
}

public sealed class MqttConnectedEventArgs(MqttConnectResult result, bool isReconnect) : EventArgs
{
    public MqttConnectResult Result { get; } = result;
    public bool IsReconnect { get; } = isReconnect;
}

/// <summary>The server refused the connection (CONNACK with an error code), or the connection could not be made.</summary>
public sealed class MqttConnectException : Exception
{
    public MqttConnectException(MqttReasonCode reasonCode, string? reasonString)
        : base($"The server refused the connection: 0x{(byte)reasonCode:X2} {reasonCode}{(reasonString is null ? "" : $" ({reasonString})")}.")
    {
        ReasonCode = reasonCode;
        ReasonString = reasonString;
    }

    public MqttConnectException(string message, Exception? inner)
        : base(message, inner) => ReasonCode = null;

    /// <summary>Null when no CONNACK arrived (network, TLS or timeout failure; see InnerException).</summary>
    public MqttReasonCode? ReasonCode { get; }
    public string? ReasonString { get; }
}

/// <summary>A client operation that could not be carried out (not connected, refused by a server limit, connection lost).</summary>
public sealed class MqttClientException : Exception
{
    public MqttClientException(string message, MqttReasonCode? reasonCode = null, Exception? inner = null)
        : base(message, inner) => ReasonCode = reasonCode;

    public MqttReasonCode? ReasonCode { get; }
}

/// <summary>A publish was dropped by the offline queue's overflow policy; it was never sent.</summary>
public sealed class MqttMessageDroppedException(string topic, MqttOfflineQueueOverflow policy)
    : Exception($"The offline queue was full ({policy}); the publish to '{topic}' was dropped.")
{
    public string Topic { get; } = topic;
    public MqttOfflineQueueOverflow Policy { get; } = policy;
}
