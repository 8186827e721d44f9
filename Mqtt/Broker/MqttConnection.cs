using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace CloudEdge.Mqtt.Broker;

/// <summary>
/// One client's network connection: reads and answers packets, and runs a delivery loop that drains the
/// session's queue within the client's receive window. Everything the client does wrong ends here, as the
/// spec's answer (DISCONNECT/CONNACK with a reason code on v5, close on 3.1.1), never as an exception.
/// </summary>
internal sealed class MqttConnection
{
    private readonly MqttBroker _broker;
    private readonly ConnectionContext _context;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SemaphoreSlim _deliverySignal = new(0);
    private readonly CancellationTokenSource _abort = new();
    private readonly Dictionary<ushort, string> _inboundAliases = [];
    private readonly Dictionary<string, ushort> _outboundAliases = new(StringComparer.Ordinal);
    private int _signaled;
    private int _closing;
    private MqttSession? _session;
    private MqttApplicationMessage? _will;
    private int _clientReceiveMaximum = 65535;
    private long _clientMaximumPacketSize = MqttPacketReader.ProtocolMaximumPacketSize;
    private ushort _clientTopicAliasMaximum;
    private uint _connectSessionExpiry;
    private ushort _keepAlive;
    private bool _disconnectedNormally;
    private bool _connectIsV5;

    public MqttConnection(MqttBroker broker, ConnectionContext context)
    {
        _broker = broker;
        _context = context;
        _input = context.Transport.Input;
        _output = context.Transport.Output;
    }

    public MqttProtocolVersion Version { get; private set; } = MqttProtocolVersion.V500;
    public string ClientId { get; private set; } = "";
    public string? UserName { get; private set; }
    public uint WillDelayInterval { get; private set; }
    private bool V5 => Version == MqttProtocolVersion.V500;
    private MqttBrokerOptions Options => _broker.Options;
    private ILogger Logger => _broker.Logger;

    public MqttApplicationMessage? TakeWill() => Interlocked.Exchange(ref _will, null);

    public void SignalDelivery()
    {
        if (Interlocked.Exchange(ref _signaled, 1) == 0) _deliverySignal.Release();
    }

    public async Task RunAsync()
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(_context.ConnectionClosed, _abort.Token);
        using var timeout = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _broker.Time);
        // Reads are not tied to ConnectionClosed: a client that sends PUBLISH + DISCONNECT and closes at once must
        // still have those packets read; the end of the stream is seen as a completed read instead.
        using var readCts = CancellationTokenSource.CreateLinkedTokenSource(_abort.Token, timeout.Token);
        Task? delivery = null;
        var connected = false;
        try
        {
            timeout.CancelAfter(Options.ConnectTimeout);
            var connect = await ReadConnectAsync(readCts.Token).ConfigureAwait(false);
            if (connect is null) return;
            if (!await AcceptConnectAsync(connect, _abort.Token).ConfigureAwait(false)) return;
            connected = true;
            delivery = Task.Run(async () =>
            {
                try
                {
                    await DeliveryLoopAsync(linked.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A connection that cannot deliver must not keep the session: end it, the session keeps its queue.
                    Logger.LogDebug("MQTT delivery to {ClientId} failed: {Error}", ClientId, e.Message);
                    await _abort.CancelAsync().ConfigureAwait(false);
                }
            }, CancellationToken.None);
            await ReadLoopAsync(timeout, readCts.Token, _abort.Token).ConfigureAwait(false);
        }
        catch (MqttProtocolException e)
        {
            _broker.Telemetry.ProtocolErrors.Add(1, new KeyValuePair<string, object?>("reason", e.ReasonCode.ToString()));
            Logger.LogDebug("MQTT protocol violation by {ClientId}: {Reason} {Message}", ClientId, e.ReasonCode, e.Message);
            if (!connected)
            {
                // Before CONNECT was understood only an unsupported level (the 3.1.1 CONNACK 0x01, 3.1.4-2) and a broken
                // v5 CONNECT (CONNACK with the reason code) get an answer; 3.1.1 and non-CONNECT first packets are closed.
                if (e.ReasonCode == MqttReasonCode.UnsupportedProtocolVersion)
                {
                    Version = MqttProtocolVersion.V311;
                    await RefuseAsync(e.ReasonCode, e.Message).ConfigureAwait(false);
                }
                else if (_connectIsV5)
                {
                    Version = MqttProtocolVersion.V500;
                    await RefuseAsync(e.ReasonCode, e.Message).ConfigureAwait(false);
                }
                else
                {
                    _broker.Telemetry.ConnectionsRejected.Add(1, new KeyValuePair<string, object?>("reason", e.ReasonCode.ToString()));
                }
            }
            else
            {
                await CloseAsync(e.ReasonCode, e.Message).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !linked.IsCancellationRequested)
        {
            if (connected)
            {
                Logger.LogInformation("MQTT client {ClientId} exceeded its keep-alive of {KeepAlive}s", ClientId, _keepAlive);
                await CloseAsync(MqttReasonCode.KeepAliveTimeout, "Keep alive timeout.").ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionResetException or ConnectionAbortedException or InvalidOperationException or ObjectDisposedException)
        {
            Logger.LogDebug("MQTT connection of {ClientId} ended: {Error}", ClientId, e.Message);
        }
        catch (Exception e)
        {
            Logger.LogError(e, "MQTT connection of {ClientId} failed", ClientId);
            await CloseAsync(MqttReasonCode.UnspecifiedError, "Server error.").ConfigureAwait(false);
        }
        finally
        {
            await _abort.CancelAsync().ConfigureAwait(false);
            if (delivery is not null)
            {
                try
                {
                    await delivery.ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    Logger.LogDebug("MQTT delivery to {ClientId} ended: {Error}", ClientId, e.Message);
                }
            }
            if (_session is not null) _broker.DetachSession(this, _session, discardWill: _disconnectedNormally);
            await CompleteTransportAsync().ConfigureAwait(false);
        }
    }

    private async Task<MqttConnectPacket?> ReadConnectAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            MqttPacket? packet;
            try
            {
                if (!MqttPacketReader.TryRead(ref buffer, MqttProtocolVersion.V500, Options.MaximumPacketSize, out packet)) packet = null;
            }
            catch (MqttProtocolException)
            {
                // A v5 CONNECT that fails validation gets CONNACK with the reason code (section 4.13); 3.1.1 has no code for it.
                _connectIsV5 = IsV5Connect(result.Buffer);
                throw;
            }
            if (packet is not null)
            {
                _input.AdvanceTo(buffer.Start);
                if (packet is MqttConnectPacket connect) return connect;
                throw MqttProtocolException_FirstPacket(packet.Type);
            }
            _input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted) return null;
        }
    }

    /// <summary>Whether the bytes start with a CONNECT whose protocol name is MQTT and level is 5, however broken the rest.</summary>
    private static bool IsV5Connect(ReadOnlySequence<byte> buffer)
    {
        Span<byte> head = stackalloc byte[12];
        var length = (int)Math.Min(head.Length, buffer.Length);
        buffer.Slice(0, length).CopyTo(head);
        head = head[..length];
        if (head.Length < 2 || head[0] != 0x10) return false;
        var index = 1;
        while (index < head.Length && index < 5 && (head[index] & 0x80) != 0) index++;
        var variableHeader = head[Math.Min(index + 1, head.Length)..];
        return variableHeader.StartsWith((ReadOnlySpan<byte>)[0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x05]);
    }

    private static MqttProtocolException MqttProtocolException_FirstPacket(MqttPacketType type) =>
        new(MqttReasonCode.ProtocolError, $"First packet is {type}, not CONNECT.");

    private async Task RefuseAsync(MqttReasonCode code, string reason)
    {
        _broker.Telemetry.ConnectionsRejected.Add(1, new KeyValuePair<string, object?>("reason", code.ToString()));
        // A CONNECT we could not parse gets CONNACK only when it told us its version (section 4.13).
        var ack = new MqttConnAckPacket { ReasonCode = code };
        if (V5) ack.Properties = new MqttProperties { ReasonString = reason };
        await SendAsync(ack, CancellationToken.None, bestEffort: true).ConfigureAwait(false);
    }

    private async Task<bool> AcceptConnectAsync(MqttConnectPacket connect, CancellationToken cancellationToken)
    {
        Version = connect.ProtocolVersion;
        var p = connect.Properties;
        if (p is not null)
        {
            _clientReceiveMaximum = p.ReceiveMaximum ?? 65535;
            _clientMaximumPacketSize = p.MaximumPacketSize ?? _clientMaximumPacketSize;
            _clientTopicAliasMaximum = p.TopicAliasMaximum ?? 0;
            if (p.AuthenticationMethod is not null)
            {
                await RefuseAsync(MqttReasonCode.BadAuthenticationMethod, "Enhanced authentication is not supported.").ConfigureAwait(false);
                return false;
            }
        }

        ClientId = connect.ClientId;
        string? assigned = null;
        if (ClientId.Length == 0)
        {
            if (!V5 && !connect.CleanStart)
            {
                await RefuseAsync(MqttReasonCode.ClientIdentifierNotValid, "Empty client identifier needs clean session.").ConfigureAwait(false);
                return false;
            }
            ClientId = assigned = "auto-" + Guid.NewGuid().ToString("N");
        }

        var certificate = _context.Features.Get<ITlsConnectionFeature>()?.ClientCertificate;
        var (code, userName) = _broker.Authenticate(connect, certificate);
        if (code != MqttReasonCode.Success)
        {
            Logger.LogWarning("MQTT CONNECT of {ClientId} refused: {Reason}", ClientId, code);
            await RefuseAsync(code, "Authentication failed.").ConfigureAwait(false);
            return false;
        }
        UserName = userName;

        // Only v5 can tell the client about a server keep-alive; a 3.1.1 client keeps its own.
        _keepAlive = V5 ? Options.ServerKeepAlive ?? connect.KeepAlive : connect.KeepAlive;
        _connectSessionExpiry = p?.SessionExpiryInterval ?? 0;
        // A 3.1.1 persistent session never expires by the spec; the broker's cap (if set) bounds it like v5 ones.
        var expiry = Math.Min(V5 ? _connectSessionExpiry : connect.CleanStart ? 0u : uint.MaxValue, Options.MaximumSessionExpiryInterval);

        if (connect.Will is { } will)
        {
            WillDelayInterval = will.Properties?.WillDelayInterval ?? 0;
            _will = new MqttApplicationMessage
            {
                Topic = will.Topic,
                Payload = will.Payload,
                QoS = will.QoS,
                Retain = will.Retain,
                Properties = ForwardedProperties(will.Properties),
                PublisherClientId = ClientId,
                PublisherUserName = userName,
            };
        }

        var (session, present) = _broker.AttachSession(this, ClientId, connect.CleanStart, expiry, userName);
        _session = session;

        var ack = new MqttConnAckPacket { SessionPresent = present, ReasonCode = MqttReasonCode.Success };
        if (V5)
        {
            ack.Properties = new MqttProperties
            {
                ReceiveMaximum = Options.ReceiveMaximum,
                TopicAliasMaximum = Options.TopicAliasMaximum,
                MaximumPacketSize = (uint)Options.MaximumPacketSize,
                AssignedClientIdentifier = assigned,
                ServerKeepAlive = Options.ServerKeepAlive != connect.KeepAlive ? Options.ServerKeepAlive : null,
                SessionExpiryInterval = expiry != _connectSessionExpiry ? expiry : null,
                ResponseInformation = p?.RequestResponseInformation == true ? Options.ResponseInformation?.Replace("{clientid}", ClientId, StringComparison.Ordinal) : null,
            };
        }
        await SendAsync(ack, cancellationToken).ConfigureAwait(false);
        _broker.Telemetry.ConnectionsAccepted.Add(1);
        Logger.LogDebug("MQTT client {ClientId} connected (v{Version}, session present {Present})", ClientId, (byte)Version, present);
        return true;
    }

    private static MqttProperties? ForwardedProperties(MqttProperties? p)
    {
        if (p is null) return null;
        if (p.PayloadFormatIndicator is null && p.ContentType is null && p.ResponseTopic is null && p.CorrelationData is null
            && p.UserProperties is null && p.MessageExpiryInterval is null)
        {
            return null;
        }
        return new MqttProperties
        {
            PayloadFormatIndicator = p.PayloadFormatIndicator,
            ContentType = p.ContentType,
            ResponseTopic = p.ResponseTopic,
            CorrelationData = p.CorrelationData,
            UserProperties = p.UserProperties,
            MessageExpiryInterval = p.MessageExpiryInterval,
        };
    }

    private async Task ReadLoopAsync(CancellationTokenSource keepAliveTimeout, CancellationToken readToken, CancellationToken token)
    {
        var keepAlive = _keepAlive == 0 ? Timeout.InfiniteTimeSpan : TimeSpan.FromSeconds(_keepAlive * 1.5);
        while (true)
        {
            keepAliveTimeout.CancelAfter(keepAlive);
            var result = await _input.ReadAsync(readToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            var done = false;
            try
            {
                var handled = 0;
                while (MqttPacketReader.TryRead(ref buffer, Version, Options.MaximumPacketSize, out var packet))
                {
                    if (!await HandleAsync(packet, token).ConfigureAwait(false))
                    {
                        done = true;
                        break;
                    }
                    // A full receive buffer holds hundreds of packets: yield now and then so that delivery loops
                    // (which drain what we route) get their share of the thread pool and queues stay short.
                    if (++handled % 64 == 0) await Task.Yield();
                }
            }
            finally
            {
                _input.AdvanceTo(buffer.Start, buffer.End);
            }
            if (done || result.IsCompleted) return;
        }
    }

    private async ValueTask<bool> HandleAsync(MqttPacket packet, CancellationToken token)
    {
        var session = _session!;
        switch (packet)
        {
            case MqttPublishPacket publish:
                await HandlePublishAsync(publish, session, token).ConfigureAwait(false);
                return true;
            case MqttPubAckPacket ack:
                CompleteInflight(session, ack.PacketId, expectReleased: false);
                return true;
            case MqttPubRecPacket rec:
                await HandlePubRecAsync(rec, session, token).ConfigureAwait(false);
                return true;
            case MqttPubRelPacket rel:
                bool known;
                lock (session.Gate) known = session.IncomingQoS2.Remove(rel.PacketId);
                if (known) _broker.SessionChanged(session);
                await SendAsync(new MqttPubCompPacket
                {
                    PacketId = rel.PacketId,
                    ReasonCode = known ? MqttReasonCode.Success : MqttReasonCode.PacketIdentifierNotFound,
                }, token).ConfigureAwait(false);
                return true;
            case MqttPubCompPacket comp:
                CompleteInflight(session, comp.PacketId, expectReleased: true);
                return true;
            case MqttSubscribePacket subscribe:
                await HandleSubscribeAsync(subscribe, session, token).ConfigureAwait(false);
                return true;
            case MqttUnsubscribePacket unsubscribe:
                var codes = new List<MqttReasonCode>(unsubscribe.TopicFilters.Count);
                foreach (var filter in unsubscribe.TopicFilters)
                {
                    codes.Add(_broker.Unsubscribe(session, filter) ? MqttReasonCode.Success : MqttReasonCode.NoSubscriptionExisted);
                }
                await SendAsync(new MqttUnsubAckPacket { PacketId = unsubscribe.PacketId, ReasonCodes = codes }, token).ConfigureAwait(false);
                return true;
            case MqttPingReqPacket:
                await SendAsync(MqttPingRespPacket.Instance, token).ConfigureAwait(false);
                return true;
            case MqttDisconnectPacket disconnect:
                HandleDisconnect(disconnect, session);
                return false;
            case MqttConnectPacket:
                throw new MqttProtocolException(MqttReasonCode.ProtocolError, "Second CONNECT on one connection.");
            case MqttAuthPacket:
                throw new MqttProtocolException(MqttReasonCode.ProtocolError, "AUTH without enhanced authentication.");
            default:
                throw new MqttProtocolException(MqttReasonCode.ProtocolError, $"{packet.Type} is not sent by clients.");
        }
    }

    private void HandleDisconnect(MqttDisconnectPacket disconnect, MqttSession session)
    {
        if (V5 && disconnect.Properties?.SessionExpiryInterval is { } expiry)
        {
            if (_connectSessionExpiry == 0 && expiry != 0)
            {
                throw new MqttProtocolException(MqttReasonCode.ProtocolError, "Session expiry set in DISCONNECT after 0 in CONNECT.");
            }
            lock (session.Gate) session.ExpiryInterval = Math.Min(expiry, Options.MaximumSessionExpiryInterval);
            _broker.SessionChanged(session, always: true);
        }
        _disconnectedNormally = disconnect.ReasonCode != MqttReasonCode.DisconnectWithWillMessage;
        if (disconnect.ReasonCode.IsError())
        {
            Logger.LogInformation("MQTT client {ClientId} disconnected with {Reason}", ClientId, disconnect.ReasonCode);
        }
    }

    private void CompleteInflight(MqttSession session, ushort packetId, bool expectReleased)
    {
        lock (session.Gate)
        {
            if (session.Inflight.TryGetValue(packetId, out var inflight) && inflight.Released == expectReleased)
            {
                session.Inflight.Remove(packetId);
            }
        }
        _broker.SessionChanged(session);
        SignalDelivery();
    }

    private async Task HandlePubRecAsync(MqttPubRecPacket rec, MqttSession session, CancellationToken token)
    {
        var found = false;
        lock (session.Gate)
        {
            if (session.Inflight.TryGetValue(rec.PacketId, out var inflight))
            {
                found = true;
                if (rec.ReasonCode.IsError()) session.Inflight.Remove(rec.PacketId);
                else inflight.Released = true;
            }
        }
        if (found) _broker.SessionChanged(session);
        if (rec.ReasonCode.IsError())
        {
            SignalDelivery();
            return;
        }
        await SendAsync(new MqttPubRelPacket
        {
            PacketId = rec.PacketId,
            ReasonCode = found ? MqttReasonCode.Success : MqttReasonCode.PacketIdentifierNotFound,
        }, token).ConfigureAwait(false);
    }

    private async Task HandlePublishAsync(MqttPublishPacket publish, MqttSession session, CancellationToken token)
    {
        _broker.Telemetry.MessagesReceived.Add(1);
        if (V5 && publish.Properties is { } props)
        {
            if (props.SubscriptionIdentifiers is not null)
            {
                throw new MqttProtocolException(MqttReasonCode.ProtocolError, "PUBLISH from a client carries a Subscription Identifier.");
            }
            if (props.TopicAlias is { } alias)
            {
                if (alias > Options.TopicAliasMaximum) throw new MqttProtocolException(MqttReasonCode.TopicAliasInvalid, $"Topic alias {alias} above the maximum {Options.TopicAliasMaximum}.");
                if (publish.Topic.Length > 0) _inboundAliases[alias] = publish.Topic;
                else if (_inboundAliases.TryGetValue(alias, out var aliased)) publish.Topic = aliased;
                else throw new MqttProtocolException(MqttReasonCode.ProtocolError, $"Topic alias {alias} was never set.");
            }
        }

        if (publish.QoS == MqttQualityOfService.ExactlyOnce)
        {
            bool duplicate, full;
            lock (session.Gate)
            {
                duplicate = session.IncomingQoS2.Contains(publish.PacketId);
                full = !duplicate && session.IncomingQoS2.Count >= Options.ReceiveMaximum;
            }
            if (duplicate)
            {
                // Already routed; exactly once means we only repeat PUBREC until PUBREL arrives.
                await SendAsync(new MqttPubRecPacket { PacketId = publish.PacketId }, token).ConfigureAwait(false);
                return;
            }
            if (full) throw new MqttProtocolException(MqttReasonCode.ReceiveMaximumExceeded, "More unacknowledged QoS 2 messages than Receive Maximum.");
        }

        var reason = MqttReasonCode.Success;
        using (var activity = StartActivity(publish))
        {
            if (!_broker.Authorize(MqttAclAccess.Publish, ClientId, UserName, publish.Topic))
            {
                reason = MqttReasonCode.NotAuthorized;
                activity?.SetStatus(ActivityStatusCode.Error, "not authorized");
            }
            else if (_broker.Interceptors.Count > 0)
            {
                reason = await InterceptAsync(publish, activity, token).ConfigureAwait(false);
            }

            Task? congested = null;
            if (reason == MqttReasonCode.Success)
            {
                congested = _broker.Route(new MqttApplicationMessage
                {
                    Topic = publish.Topic,
                    Payload = publish.Payload.ToArray(),
                    QoS = publish.QoS,
                    Retain = publish.Retain,
                    Properties = ForwardedProperties(publish.Properties),
                    ExpiresAt = _broker.ExpiryFrom(publish.Properties?.MessageExpiryInterval),
                    PublisherClientId = ClientId,
                    PublisherUserName = UserName,
                });
            }
            else
            {
                _broker.CountDrop(reason == MqttReasonCode.NotAuthorized ? "not_authorized" : "rejected", ClientId, 1);
                Logger.LogInformation("MQTT PUBLISH from {ClientId} on {Topic} refused: {Reason}", ClientId, publish.Topic, reason);
            }
            if (congested is not null)
            {
                // Back-pressure: a receiving queue is long; hold this publisher (and its acknowledgement) until it
                // drains or the congestion episode's timer (BackpressureMaxWait) ends the wait.
                await congested.ConfigureAwait(false);
            }
        }

        // 3.1.1 has no negative acknowledgement: a refused message is acknowledged (and counted as dropped above).
        var ackCode = V5 ? reason : MqttReasonCode.Success;
        switch (publish.QoS)
        {
            case MqttQualityOfService.AtLeastOnce:
                await SendAsync(new MqttPubAckPacket { PacketId = publish.PacketId, ReasonCode = ackCode }, token).ConfigureAwait(false);
                break;
            case MqttQualityOfService.ExactlyOnce:
                if (!ackCode.IsError())
                {
                    lock (session.Gate) session.IncomingQoS2.Add(publish.PacketId);
                    _broker.SessionChanged(session);
                }
                await SendAsync(new MqttPubRecPacket { PacketId = publish.PacketId, ReasonCode = ackCode }, token).ConfigureAwait(false);
                break;
        }
    }

    private static Activity? StartActivity(MqttPublishPacket publish)
    {
        var source = MqttBrokerTelemetry.ActivitySource;
        if (!source.HasListeners()) return null;
        ActivityContext parent = default;
        if (publish.Properties?.GetUserProperty("traceparent") is { } traceParent)
        {
            ActivityContext.TryParse(traceParent, publish.Properties.GetUserProperty("tracestate"), isRemote: true, out parent);
        }
        var activity = source.StartActivity("MQTT PUBLISH", ActivityKind.Consumer, parent);
        if (activity is not null)
        {
            activity.SetTag("messaging.system", "mqtt");
            activity.SetTag("messaging.destination.name", publish.Topic);
            activity.SetTag("messaging.operation.type", "receive");
            activity.SetTag("messaging.message.body.size", publish.Payload.Length);
        }
        return activity;
    }

    private async ValueTask<MqttReasonCode> InterceptAsync(MqttPublishPacket publish, Activity? activity, CancellationToken token)
    {
        var context = new MqttPublishContext(ClientId, UserName, publish, activity);
        foreach (var interceptor in _broker.Interceptors)
        {
            try
            {
                var code = await interceptor.InterceptAsync(context, token).ConfigureAwait(false);
                if (code.IsError())
                {
                    activity?.SetStatus(ActivityStatusCode.Error, code.ToString());
                    return code;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Logger.LogError(e, "MQTT publish interceptor {Interceptor} failed for {Topic}", interceptor.GetType().Name, publish.Topic);
                activity?.SetStatus(ActivityStatusCode.Error, e.Message);
                return MqttReasonCode.ImplementationSpecificError;
            }
        }
        return MqttReasonCode.Success;
    }

    private async Task HandleSubscribeAsync(MqttSubscribePacket subscribe, MqttSession session, CancellationToken token)
    {
        uint? subscriptionId = null;
        if (subscribe.Properties?.SubscriptionIdentifiers is [var sid]) subscriptionId = sid;
        var codes = new List<MqttReasonCode>(subscribe.Subscriptions.Count);
        var retained = new List<MqttDelivery>();
        foreach (var sub in subscribe.Subscriptions)
        {
            var shared = MqttTopic.TryParseShared(sub.TopicFilter, out var group, out var inner, out var valid);
            if (shared ? !valid : !MqttTopic.IsValidTopicFilter(sub.TopicFilter))
            {
                codes.Add(MqttReasonCode.TopicFilterInvalid);
                continue;
            }
            if (shared && sub.NoLocal) throw new MqttProtocolException(MqttReasonCode.ProtocolError, "No Local on a shared subscription.");
            if (!_broker.Authorize(MqttAclAccess.Subscribe, ClientId, UserName, inner))
            {
                Logger.LogInformation("MQTT SUBSCRIBE of {ClientId} to {Filter} refused: not authorized", ClientId, sub.TopicFilter);
                codes.Add(MqttReasonCode.NotAuthorized);
                continue;
            }
            var added = _broker.Subscribe(session, sub.TopicFilter, inner, shared ? group : null, sub, subscriptionId,
                isNew => !shared && (sub.RetainHandling == MqttRetainHandling.SendAtSubscribe || (sub.RetainHandling == MqttRetainHandling.SendAtSubscribeIfNew && isNew)),
                out var retainedMessages);
            if (added is null)
            {
                Logger.LogWarning("MQTT SUBSCRIBE of {ClientId} to {Filter} refused: {Limit} subscriptions already", ClientId, sub.TopicFilter, Options.MaximumSubscriptionsPerSession);
                codes.Add(MqttReasonCode.QuotaExceeded);
                continue;
            }
            codes.Add((MqttReasonCode)sub.QoS);
            foreach (var message in retainedMessages ?? [])
            {
                retained.Add(new MqttDelivery(message, message.QoS < sub.QoS ? message.QoS : sub.QoS, retain: true, subscriptionId is { } id ? [id] : null));
            }
        }
        await SendAsync(new MqttSubAckPacket { PacketId = subscribe.PacketId, ReasonCodes = codes }, token).ConfigureAwait(false);
        foreach (var delivery in retained) _ = _broker.Enqueue(session, delivery);
    }

    // ---- outbound ----

    private async Task DeliveryLoopAsync(CancellationToken token)
    {
        var session = _session!;
        var batch = new List<MqttPacket>();
        var tooLargeOnResume = 0;
        lock (session.Gate)
        {
            // Resume: in-flight messages go first, in order, PUBLISH with DUP or PUBREL (4.4).
            foreach (var (id, inflight) in session.Inflight.ToArray())
            {
                MqttPacket? packet = inflight.Released
                    ? new MqttPubRelPacket { PacketId = id }
                    : BuildPublish(inflight.Delivery, id, dup: true, useAlias: false);
                if (packet is null)
                {
                    // Too large for this connection's Maximum Packet Size: treated as delivered (3.1.2.11.4).
                    session.Inflight.Remove(id);
                    tooLargeOnResume++;
                    continue;
                }
                batch.Add(packet);
            }
        }
        if (tooLargeOnResume > 0) _broker.CountDrop("packet_too_large", ClientId, tooLargeOnResume);
        if (batch.Count > 0) await WriteBatchAsync(batch, token).ConfigureAwait(false);

        var taken = new List<(MqttDelivery Delivery, ushort PacketId)>();
        while (!token.IsCancellationRequested)
        {
            batch.Clear();
            taken.Clear();
            var expired = 0;
            var tooLarge = 0;
            lock (session.Gate)
            {
                if (session.Connection != this) return;
                var bytes = 0;
                while (session.Pending.Count > 0 && taken.Count < MaxBatchMessages && bytes < MaxBatchBytes)
                {
                    var delivery = session.Pending.Peek();
                    if (delivery.QoS > 0 && session.Inflight.Count >= _clientReceiveMaximum) break;
                    session.Pending.Dequeue();
                    if (_broker.IsExpired(delivery.Message))
                    {
                        expired++;
                        continue;
                    }
                    var id = delivery.QoS > 0 ? session.NextPacketId() : (ushort)0;
                    if (id != 0) session.Inflight.Add(id, new MqttInflight(delivery, id));
                    taken.Add((delivery, id));
                    bytes += delivery.Message.Payload.Length + delivery.Message.Topic.Length;
                }
                if (session.Drained is not null && session.Pending.Count <= Options.BackpressureQueueLength / 2) session.ReleaseWaiters();
            }
            if (taken.Count > 0 || expired > 0) _broker.SessionChanged(session);
            // Packets are built outside the session lock so publishers routing to this session are not held up.
            List<ushort>? notSent = null;
            foreach (var (delivery, id) in taken)
            {
                var packet = BuildPublish(delivery, id, dup: false, useAlias: true);
                if (packet is null)
                {
                    tooLarge++;
                    if (id != 0) (notSent ??= []).Add(id);
                    continue;
                }
                batch.Add(packet);
            }
            if (notSent is not null)
            {
                lock (session.Gate)
                {
                    foreach (var id in notSent) session.Inflight.Remove(id);
                }
            }
            if (expired > 0) _broker.CountDrop("expired", ClientId, expired);
            if (tooLarge > 0) _broker.CountDrop("packet_too_large", ClientId, tooLarge);
            if (batch.Count == 0)
            {
                if (taken.Count > 0) continue;
                await _deliverySignal.WaitAsync(token).ConfigureAwait(false);
                Volatile.Write(ref _signaled, 0);
                continue;
            }
            await WriteBatchAsync(batch, token).ConfigureAwait(false);
            _broker.Telemetry.MessagesSent.Add(batch.Count);
        }
    }

    private const int MaxBatchMessages = 4096;
    private const int MaxBatchBytes = 1024 * 1024;

    /// <summary>Builds the PUBLISH for one delivery; null when it exceeds the client's Maximum Packet Size (3.1.2.11.4).</summary>
    private MqttPublishPacket? BuildPublish(MqttDelivery delivery, ushort packetId, bool dup, bool useAlias)
    {
        var message = delivery.Message;
        MqttProperties? props = null;
        if (V5 && (message.Properties is not null || delivery.SubscriptionIds is not null))
        {
            var source = message.Properties;
            props = new MqttProperties
            {
                PayloadFormatIndicator = source?.PayloadFormatIndicator,
                ContentType = source?.ContentType,
                ResponseTopic = source?.ResponseTopic,
                CorrelationData = source?.CorrelationData,
                UserProperties = source?.UserProperties,
                SubscriptionIdentifiers = delivery.SubscriptionIds,
            };
            if (message.ExpiresAt is { } expiresAt)
            {
                var left = (expiresAt - _broker.Time.GetTimestamp()) / (double)_broker.Time.TimestampFrequency;
                props.MessageExpiryInterval = (uint)Math.Max(1, Math.Ceiling(left));
            }
        }
        var packet = new MqttPublishPacket
        {
            Topic = message.Topic,
            Payload = new ReadOnlySequence<byte>(message.Payload),
            QoS = delivery.QoS,
            Retain = delivery.Retain,
            Dup = dup,
            PacketId = packetId,
            Properties = props,
        };
        if (MqttPacketWriter.GetSize(packet, Version) > _clientMaximumPacketSize) return null;
        if (useAlias && V5 && _clientTopicAliasMaximum > 0 && message.Topic.Length > 8)
        {
            if (_outboundAliases.TryGetValue(message.Topic, out var alias))
            {
                packet.Topic = "";
                (packet.Properties ??= new MqttProperties()).TopicAlias = alias;
            }
            else if (_outboundAliases.Count < _clientTopicAliasMaximum)
            {
                alias = (ushort)(_outboundAliases.Count + 1);
                _outboundAliases[message.Topic] = alias;
                (packet.Properties ??= new MqttProperties()).TopicAlias = alias;
            }
        }
        return packet;
    }

    private async Task WriteBatchAsync(List<MqttPacket> batch, CancellationToken token)
    {
        await _writeLock.WaitAsync(token).ConfigureAwait(false);
        try
        {
            foreach (var packet in batch) MqttPacketWriter.Write(_output, packet, Version);
            await _output.FlushAsync(token).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task SendAsync(MqttPacket packet, CancellationToken token, bool bestEffort = false)
    {
        try
        {
            if (!await _writeLock.WaitAsync(bestEffort ? TimeSpan.FromSeconds(5) : Timeout.InfiniteTimeSpan, token).ConfigureAwait(false)) return;
        }
        catch (OperationCanceledException) when (bestEffort)
        {
            return;
        }
        try
        {
            // Reason strings and user properties are the first thing to go when the client's limit is small (3.1.2.11.4).
            if (V5 && MqttPacketWriter.GetSize(packet, Version) > _clientMaximumPacketSize) StripProperties(packet);
            MqttPacketWriter.Write(_output, packet, Version);
            if (bestEffort)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5), _broker.Time);
                await _output.FlushAsync(cts.Token).ConfigureAwait(false);
            }
            else
            {
                await _output.FlushAsync(token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (bestEffort && e is not OutOfMemoryException)
        {
            Logger.LogDebug("MQTT could not send {Type} to {ClientId}: {Error}", packet.Type, ClientId, e.Message);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private static void StripProperties(MqttPacket packet)
    {
        switch (packet)
        {
            case MqttPublishResponsePacket r: r.Properties = null; break;
            case MqttSubAckPacket s: s.Properties = null; break;
            case MqttUnsubAckPacket u: u.Properties = null; break;
            case MqttDisconnectPacket d: d.Properties = null; break;
            case MqttConnAckPacket c when c.Properties is not null: c.Properties.ReasonString = null; c.Properties.UserProperties = null; break;
        }
    }

    /// <summary>Ends the connection with a reason: DISCONNECT on v5 (best effort), then close.</summary>
    public async Task CloseAsync(MqttReasonCode reason, string reasonString)
    {
        if (Interlocked.Exchange(ref _closing, 1) == 1) return;
        if (V5 && _session is not null)
        {
            await SendAsync(new MqttDisconnectPacket { ReasonCode = reason, Properties = new MqttProperties { ReasonString = reasonString } },
                CancellationToken.None, bestEffort: true).ConfigureAwait(false);
        }
        try
        {
            // Stops the read and delivery loops; RunAsync then completes the transport, which flushes what was sent.
            await _abort.CancelAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task CompleteTransportAsync()
    {
        var locked = await _writeLock.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        try
        {
            await _output.CompleteAsync().ConfigureAwait(false);
            await _input.CompleteAsync().ConfigureAwait(false);
        }
        finally
        {
            if (locked) _writeLock.Release();
        }
        if (!locked) _context.Abort(new ConnectionAbortedException("Output blocked while closing."));
    }
}
