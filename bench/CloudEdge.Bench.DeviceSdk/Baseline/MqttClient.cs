using System.Buffers;
using System.Diagnostics;
using System.Threading.Channels;
using CloudEdge.Mqtt;

namespace CloudEdge.Bench.DeviceSdk.Baseline;

/// <summary>
/// An MQTT 5.0 / 3.1.1 client for devices: QoS 0/1/2 with the server's limits honoured, automatic reconnection
/// with jittered exponential backoff, in-flight resend after reconnect, a bounded offline queue, half-open
/// detection, and received messages dispatched off the network loop through a bounded channel.
/// Thread-safe: publish, subscribe and disconnect may be called concurrently.
/// </summary>
public sealed partial class MqttClient : IAsyncDisposable, IMqttConnectionOwner
{
    private enum State
    {
        Created,
        Connecting,
        Connected,
        Reconnecting,
        Stopped,
        Disposed,
    }

    private readonly MqttClientOptions _options;
    private readonly TimeProvider _time;
    private readonly ReconnectBackoff _backoff;
    private readonly KeyValuePair<string, object?> _clientTag;
    private readonly object _gate = new();
    private readonly LinkedList<PendingPublish> _queue = new();
    private readonly Dictionary<ushort, Flight> _flights = [];
    private readonly LinkedList<Flight> _flightOrder = new();
    private readonly Dictionary<ushort, TaskCompletionSource<MqttPacket>> _requests = [];
    private readonly HashSet<ushort> _incomingQoS2 = [];
    private readonly List<MqttSubscription> _subscriptions = [];
    private readonly Channel<MqttMessage> _inbox;
    private readonly CancellationTokenSource _disposing = new();
    private State _state = State.Created;
    private MqttConnection? _connection;
    private CancellationTokenSource? _run;
    private Task? _supervisor;
    private Task? _dispatcher;
    private ushort _lastPacketId;
    private long _published, _completed, _failed, _dropped, _resent, _received, _reconnects;

    public MqttClient(MqttClientOptions options, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _backoff = new ReconnectBackoff(options.Reconnect.InitialDelay, options.Reconnect.MaximumDelay, Random.Shared.NextDouble);
        _clientTag = new("mqtt.client.id", options.ClientId);
        _inbox = Channel.CreateBounded<MqttMessage>(new BoundedChannelOptions(options.InboxCapacity)
        {
            SingleReader = true,
            // A closing connection's read loop may still be delivering while the next one starts.
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public MqttClientOptions Options => _options;

    /// <summary>Called for every received message, one at a time, off the network loop. Exceptions are counted and swallowed.</summary>
    public Func<MqttMessage, CancellationToken, ValueTask>? MessageHandler { get; set; }

    public event EventHandler<MqttConnectedEventArgs>? Connected;

    /// <summary>Raised for every loss of an established connection, and once for DisconnectAsync/DisposeAsync.</summary>
    public event EventHandler<MqttDisconnectedEventArgs>? Disconnected;

    public bool IsConnected
    {
        get
        {
            lock (_gate) return _state == State.Connected;
        }
    }

    /// <summary>Limits and flags of the current connection; null while disconnected.</summary>
    public MqttConnectResult? ConnectionInfo
    {
        get
        {
            lock (_gate) return _connection?.Result;
        }
    }

    /// <summary>A consistent snapshot of this client's counters (the same events as the Meter's instruments).</summary>
    public MqttClientStatistics GetStatistics()
    {
        lock (_gate)
        {
            return new MqttClientStatistics(_published, _completed, _failed, _dropped, _resent, _received, _reconnects, _queue.Count, _flights.Count);
        }
    }

    public async Task<MqttConnectResult> ConnectAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_state == State.Disposed, this);
            if (_state is not (State.Created or State.Stopped)) throw new InvalidOperationException($"The client is already {_state}.");
            _state = State.Connecting;
        }
        try
        {
            var connection = await MqttConnection.OpenAsync(_options, _options.CleanStart, this, _time, cancellationToken).ConfigureAwait(false);
            var run = new CancellationTokenSource();
            if (!Activate(connection, isReconnect: false, run))
            {
                connection.Close(new DisconnectInfo(MqttDisconnectReason.ClientRequested, null, null, null));
                throw new MqttClientException("The client was stopped while connecting.");
            }
            _dispatcher ??= Task.Run(DispatchAsync);
            _supervisor = SuperviseAsync(connection, run.Token);
            RaiseConnected(connection.Result, isReconnect: false);
            return connection.Result;
        }
        catch
        {
            List<PendingPublish> abandoned = [];
            lock (_gate)
            {
                if (_state == State.Connecting)
                {
                    _state = State.Stopped;
                    abandoned = TakeAllPublishes();
                }
            }
            var failed = new MqttClientException("The connection attempt failed before the message could be sent.");
            foreach (var p in abandoned) Fail(p, failed);
            throw;
        }
    }

    /// <summary>Sends DISCONNECT and closes. Publishes still queued or unacknowledged fail with <see cref="MqttClientException"/>.</summary>
    /// <param name="reasonCode">v5: <see cref="MqttReasonCode.DisconnectWithWillMessage"/> asks the server to publish the will.</param>
    public async Task DisconnectAsync(MqttReasonCode reasonCode = MqttReasonCode.Success, CancellationToken cancellationToken = default)
    {
        MqttConnection? connection;
        List<PendingPublish> abandoned;
        List<TaskCompletionSource<MqttPacket>> requests;
        lock (_gate)
        {
            if (_state is State.Created or State.Stopped or State.Disposed) return;
            _state = State.Stopped;
            connection = _connection;
            _connection = null;
            _run?.Cancel();
            abandoned = TakeAllPublishes();
            requests = TakeRequests();
        }
        var stopped = new MqttClientException("The client was disconnected by the application before the operation completed.");
        foreach (var p in abandoned) Fail(p, stopped);
        foreach (var r in requests) r.TrySetException(stopped);
        if (connection is not null)
        {
            var info = new DisconnectInfo(MqttDisconnectReason.ClientRequested, reasonCode, null, null);
            await connection.SendAndCloseAsync(new MqttDisconnectPacket { ReasonCode = reasonCode }, info, cancellationToken).ConfigureAwait(false);
            RaiseDisconnected(new MqttDisconnectedEventArgs(MqttDisconnectReason.ClientRequested, reasonCode, null, null, willReconnect: false));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await DisconnectAsync().ConfigureAwait(false);
        lock (_gate)
        {
            if (_state == State.Disposed) return;
            _state = State.Disposed;
        }
        _inbox.Writer.TryComplete();
        _disposing.Cancel();
        if (_supervisor is { } supervisor) await supervisor.ConfigureAwait(false);
        if (_dispatcher is { } dispatcher) await dispatcher.ConfigureAwait(false);
        _disposing.Dispose();
    }

    /// <summary>
    /// Publishes one message. QoS 0 completes when written to the socket, QoS 1 on PUBACK, QoS 2 on PUBCOMP (or an
    /// error PUBREC). While the connection is down the publish waits in the offline queue and survives reconnects.
    /// Cancelling stops the wait; a publish already sent may still be delivered.
    /// </summary>
    public Task<MqttPublishResult> PublishAsync(MqttMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ValidateForPublish(message);
        var activity = StartPublishActivity(message.Topic, message.QoS);
        return PublishCoreAsync(message, activity, cancellationToken);
    }

    public Task<MqttPublishResult> PublishAsync(string topic, ReadOnlyMemory<byte> payload, MqttQualityOfService qos = MqttQualityOfService.AtLeastOnce,
        bool retain = false, CancellationToken cancellationToken = default) =>
        PublishAsync(new MqttMessage { Topic = topic, Payload = payload, QoS = qos, Retain = retain }, cancellationToken);

    public Task<MqttSubscribeResult> SubscribeAsync(string topicFilter, MqttQualityOfService qos = MqttQualityOfService.AtLeastOnce, CancellationToken cancellationToken = default) =>
        SubscribeAsync([new MqttSubscription { TopicFilter = topicFilter, QoS = qos }], cancellationToken);

    /// <summary>Subscribes with full v5 options (No Local, Retain As Published, Retain Handling are dropped on 3.1.1).</summary>
    public async Task<MqttSubscribeResult> SubscribeAsync(IReadOnlyList<MqttSubscription> subscriptions, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(subscriptions);
        if (subscriptions.Count == 0) throw new ArgumentException("At least one subscription is required.", nameof(subscriptions));
        foreach (var s in subscriptions)
        {
            if (!MqttTopic.IsValidTopicFilter(s.TopicFilter)) throw new ArgumentException($"'{s.TopicFilter}' is not a valid topic filter.", nameof(subscriptions));
            if (s.QoS > MqttQualityOfService.ExactlyOnce) throw new ArgumentException($"QoS {s.QoS} is not valid.", nameof(subscriptions));
        }
        var copies = subscriptions.Select(Copy).ToList();
        var reply = await RequestAsync(id => new MqttSubscribePacket { PacketId = id, Subscriptions = copies }, cancellationToken).ConfigureAwait(false);
        if (reply is not MqttSubAckPacket ack) throw new MqttClientException($"Expected SUBACK, got {reply.Type}.");
        lock (_gate)
        {
            for (var i = 0; i < copies.Count && i < ack.ReasonCodes.Count; i++)
            {
                if (ack.ReasonCodes[i].IsError()) continue;
                _subscriptions.RemoveAll(s => s.TopicFilter == copies[i].TopicFilter);
                _subscriptions.Add(copies[i]);
            }
        }
        return new MqttSubscribeResult(ack.ReasonCodes, ack.Properties?.ReasonString);
    }

    public async Task<MqttUnsubscribeResult> UnsubscribeAsync(IReadOnlyList<string> topicFilters, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(topicFilters);
        if (topicFilters.Count == 0) throw new ArgumentException("At least one topic filter is required.", nameof(topicFilters));
        foreach (var f in topicFilters)
        {
            if (!MqttTopic.IsValidTopicFilter(f)) throw new ArgumentException($"'{f}' is not a valid topic filter.", nameof(topicFilters));
        }
        var filters = topicFilters.ToList();
        var reply = await RequestAsync(id => new MqttUnsubscribePacket { PacketId = id, TopicFilters = filters }, cancellationToken).ConfigureAwait(false);
        if (reply is not MqttUnsubAckPacket ack) throw new MqttClientException($"Expected UNSUBACK, got {reply.Type}.");
        lock (_gate) _subscriptions.RemoveAll(s => filters.Contains(s.TopicFilter));
        return new MqttUnsubscribeResult(ack.ReasonCodes, ack.Properties?.ReasonString);
    }

    private async Task<MqttPacket> RequestAsync(Func<ushort, MqttPacket> create, CancellationToken cancellationToken)
    {
        var reply = new TaskCompletionSource<MqttPacket>(TaskCreationOptions.RunContinuationsAsynchronously);
        ushort id;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_state == State.Disposed, this);
            if (_state != State.Connected || _connection is not { } connection) throw new MqttClientException("The client is not connected.");
            id = NextPacketId();
            _requests[id] = reply;
            if (!connection.Send(create(id)))
            {
                _requests.Remove(id);
                throw new MqttClientException("The connection is closing.");
            }
        }
        try
        {
            return await reply.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            lock (_gate) _requests.Remove(id);
            throw;
        }
    }

    private static MqttSubscription Copy(MqttSubscription s) => new()
    {
        TopicFilter = s.TopicFilter,
        QoS = s.QoS,
        NoLocal = s.NoLocal,
        RetainAsPublished = s.RetainAsPublished,
        RetainHandling = s.RetainHandling,
    };

    private static void ValidateForPublish(MqttMessage message)
    {
        if (!MqttTopic.IsValidTopicName(message.Topic)) throw new ArgumentException($"'{message.Topic}' is not a valid topic name (empty, wildcard, U+0000 or too long).", nameof(message));
        if (message.QoS > MqttQualityOfService.ExactlyOnce) throw new ArgumentException($"QoS {(int)message.QoS} is not valid.", nameof(message));
    }

    private static Activity? StartPublishActivity(string topic, MqttQualityOfService qos)
    {
        // The span is a child of the caller's current span but must not become the caller's current span:
        // the next publish would otherwise nest under this one.
        var current = Activity.Current;
        var activity = DeviceSdkTelemetry.Source.StartActivity("publish", ActivityKind.Producer);
        Activity.Current = current;
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("messaging.system", "mqtt");
            activity.SetTag("messaging.operation.type", "send");
            activity.SetTag("messaging.destination.name", topic);
            activity.SetTag("messaging.mqtt.qos", (int)qos);
        }
        return activity;
    }

    /// <summary>The W3C context to propagate: the publish span, else whatever span is current.</summary>
    private static (string? TraceParent, string? TraceState) TraceContext(Activity? activity)
    {
        var source = activity ?? Activity.Current;
        if (source is null || source.IdFormat != ActivityIdFormat.W3C) return (null, null);
        return (source.Id, source.TraceStateString);
    }

    private async Task<MqttPublishResult> PublishCoreAsync(MqttMessage message, Activity? activity, CancellationToken cancellationToken)
    {
        var (traceParent, traceState) = TraceContext(activity);
        var pending = new PendingPublish(message, activity, traceParent, traceState, _time.GetTimestamp());
        MqttMessageDroppedException? dropped = null;
        PendingPublish? evicted = null;
        lock (_gate)
        {
            if (_state is State.Disposed or State.Created or State.Stopped)
            {
                var error = _state == State.Disposed ? (Exception)new ObjectDisposedException(nameof(MqttClient)) : new MqttClientException("The client is not connected; call ConnectAsync first.");
                activity?.SetStatus(ActivityStatusCode.Error, error.Message);
                activity?.Dispose();
                throw error;
            }
            _published++;
            DeviceSdkTelemetry.Published.Add(1, _clientTag);
            if (_queue.Count >= _options.OfflineQueueCapacity)
            {
                dropped = new MqttMessageDroppedException(message.Topic, _options.OfflineQueueOverflow);
                if (_options.OfflineQueueOverflow == MqttOfflineQueueOverflow.DropOldest)
                {
                    evicted = _queue.First!.Value;
                    Dequeue(evicted);
                    Enqueue(pending, atFront: false);
                }
            }
            else
            {
                Enqueue(pending, atFront: false);
            }
            Pump();
        }
        if (dropped is not null)
        {
            var victim = evicted ?? pending;
            lock (_gate) _dropped++;
            DeviceSdkTelemetry.OfflineDropped.Add(1, _clientTag);
            Fail(victim, dropped);
        }
        try
        {
            return await pending.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            var removed = false;
            lock (_gate)
            {
                if (pending.QueueNode is not null)
                {
                    Dequeue(pending);
                    removed = true;
                }
            }
            if (removed) Fail(pending, new OperationCanceledException(cancellationToken));
            throw;
        }
    }

    private void Enqueue(PendingPublish pending, bool atFront)
    {
        pending.QueueNode = atFront ? _queue.AddFirst(pending) : _queue.AddLast(pending);
        DeviceSdkTelemetry.OfflineDepth.Add(1, _clientTag);
    }

    private void Dequeue(PendingPublish pending)
    {
        _queue.Remove(pending.QueueNode!);
        pending.QueueNode = null;
        DeviceSdkTelemetry.OfflineDepth.Add(-1, _clientTag);
    }

    /// <summary>Moves queued publishes to the connection while the server's Receive Maximum allows. Caller holds the gate.</summary>
    private void Pump()
    {
        if (_state != State.Connected || _connection is not { } connection) return;
        while (_queue.First is { } node)
        {
            var pending = node.Value;
            var qos = pending.Message.QoS;
            if (qos > MqttQualityOfService.AtMostOnce && _flights.Count >= connection.ReceiveMaximum) return;
            Dequeue(pending);
            if (Refusal(pending, connection) is { } refusal)
            {
                Fail(pending, refusal);
                continue;
            }
            if (qos == MqttQualityOfService.AtMostOnce)
            {
                if (!connection.Send(new Outbound(null, pending, 0, false, null))) Fail(pending, new MqttClientException("The connection closed before the message was written."));
                continue;
            }
            var flight = new Flight(pending, NextPacketId(), qos == MqttQualityOfService.AtLeastOnce ? FlightStage.AwaitingPubAck : FlightStage.AwaitingPubRec);
            flight.Node = _flightOrder.AddLast(flight);
            _flights[flight.PacketId] = flight;
            // If the send fails the connection is closing: the flight is resent after the reconnect.
            connection.Send(new Outbound(null, pending, flight.PacketId, false, null));
        }
    }

    private MqttClientException? Refusal(PendingPublish pending, MqttConnection connection)
    {
        var message = pending.Message;
        if (message.QoS > connection.MaximumQoS)
        {
            return new MqttClientException($"The server accepts QoS up to {(int)connection.MaximumQoS}; the publish asked for {(int)message.QoS}.", MqttReasonCode.QoSNotSupported);
        }
        if (message.Retain && !connection.RetainAvailable)
        {
            return new MqttClientException("The server does not support retained messages.", MqttReasonCode.RetainNotSupported);
        }
        try
        {
            pending.EncodedSize ??= MqttPacketWriter.GetSize(BuildPublishPacket(pending, 1, false, connection.Version), connection.Version);
        }
        catch (MqttProtocolException e)
        {
            return new MqttClientException($"The publish cannot be encoded: {e.Message}", e.ReasonCode, e);
        }
        if (pending.EncodedSize > connection.MaximumPacketSize)
        {
            return new MqttClientException($"The PUBLISH is {pending.EncodedSize} bytes; the server's Maximum Packet Size is {connection.MaximumPacketSize}.", MqttReasonCode.PacketTooLarge);
        }
        return null;
    }

    private ushort NextPacketId()
    {
        for (var i = 0; i < ushort.MaxValue; i++)
        {
            _lastPacketId = _lastPacketId == ushort.MaxValue ? (ushort)1 : (ushort)(_lastPacketId + 1);
            if (!_flights.ContainsKey(_lastPacketId) && !_requests.ContainsKey(_lastPacketId)) return _lastPacketId;
        }
        throw new MqttClientException("All 65535 packet identifiers are in use.");
    }

    internal static MqttPublishPacket BuildPublishPacket(PendingPublish pending, ushort packetId, bool dup, MqttProtocolVersion version)
    {
        var message = pending.Message;
        if (version == MqttProtocolVersion.V500 && !pending.PropertiesBuilt)
        {
            pending.Properties = BuildProperties(message, pending.TraceParent, pending.TraceState, willDelay: null);
            pending.PropertiesBuilt = true;
        }
        return new MqttPublishPacket
        {
            Topic = message.Topic,
            Payload = new ReadOnlySequence<byte>(message.Payload),
            QoS = message.QoS,
            Retain = message.Retain,
            Dup = dup,
            PacketId = packetId,
            Properties = version == MqttProtocolVersion.V500 ? pending.Properties : null,
        };
    }

    internal static MqttProperties? BuildProperties(MqttMessage message, string? traceParent, string? traceState, uint? willDelay)
    {
        var p = new MqttProperties
        {
            PayloadFormatIndicator = message.PayloadFormat == MqttPayloadFormat.Utf8 ? MqttPayloadFormat.Utf8 : null,
            MessageExpiryInterval = message.MessageExpiryInterval,
            ContentType = message.ContentType,
            ResponseTopic = message.ResponseTopic,
            CorrelationData = message.CorrelationData,
            WillDelayInterval = willDelay,
        };
        foreach (var up in message.UserProperties) p.AddUserProperty(up.Name, up.Value);
        // The caller's own traceparent wins: it may be forwarding someone else's context.
        if (traceParent is not null && message.GetUserProperty("traceparent") is null)
        {
            p.AddUserProperty("traceparent", traceParent);
            if (!string.IsNullOrEmpty(traceState)) p.AddUserProperty("tracestate", traceState);
        }
        return p;
    }

    private void Complete(PendingPublish pending, MqttPublishResult result)
    {
        if (!pending.Completion.TrySetResult(result)) return;
        var ok = result.IsSuccess;
        lock (_gate)
        {
            if (ok) _completed++;
            else _failed++;
        }
        (ok ? DeviceSdkTelemetry.Completed : DeviceSdkTelemetry.Failed).Add(1, _clientTag);
        Finish(pending, ok ? null : $"0x{(byte)result.ReasonCode:X2} {result.ReasonCode}", result.ReasonCode);
    }

    private void Fail(PendingPublish pending, Exception error)
    {
        var set = error is OperationCanceledException oce ? pending.Completion.TrySetCanceled(oce.CancellationToken) : pending.Completion.TrySetException(error);
        if (!set) return;
        lock (_gate) _failed++;
        DeviceSdkTelemetry.Failed.Add(1, _clientTag);
        Finish(pending, error.Message, null);
    }

    private void Finish(PendingPublish pending, string? error, MqttReasonCode? reasonCode)
    {
        DeviceSdkTelemetry.PublishDuration.Record(_time.GetElapsedTime(pending.StartedAt).TotalMilliseconds, _clientTag);
        if (pending.Activity is not { } activity) return;
        if (reasonCode is { } code) activity.SetTag("messaging.mqtt.reason_code", (int)code);
        if (error is not null) activity.SetStatus(ActivityStatusCode.Error, error);
        // Stop() makes the span's parent current on this thread; the network loops keep no current span.
        var current = Activity.Current;
        activity.Stop();
        Activity.Current = current;
    }

    /// <summary>Installs a fresh connection and replays session state onto it. False if the client stopped meanwhile.</summary>
    private bool Activate(MqttConnection connection, bool isReconnect, CancellationTokenSource? run)
    {
        List<PendingPublish> completedBySession = [];
        lock (_gate)
        {
            if (isReconnect ? _state != State.Reconnecting : _state != State.Connecting) return false;
            if (run is not null) _run = run;
            _connection = connection;
            _state = State.Connected;
            if (isReconnect) _reconnects++;
            if (connection.Result.SessionPresent)
            {
                foreach (var flight in _flightOrder)
                {
                    var resent = flight.Stage == FlightStage.AwaitingPubComp
                        ? connection.Send(new MqttPubRelPacket { PacketId = flight.PacketId })
                        : connection.Send(new Outbound(null, flight.Publish, flight.PacketId, true, null));
                    if (resent)
                    {
                        _resent++;
                        DeviceSdkTelemetry.Resent.Add(1, _clientTag);
                    }
                }
            }
            else
            {
                // The server has no session: packet identifiers mean nothing to it any more. A QoS 2 message past
                // PUBREC was already accepted; everything else goes out again as a new publish, ahead of the queue.
                _incomingQoS2.Clear();
                for (var node = _flightOrder.Last; node is not null; node = node.Previous)
                {
                    if (node.Value.Stage == FlightStage.AwaitingPubComp) completedBySession.Add(node.Value.Publish);
                    else
                    {
                        Enqueue(node.Value.Publish, atFront: true);
                        _resent++;
                        DeviceSdkTelemetry.Resent.Add(1, _clientTag);
                    }
                }
                _flights.Clear();
                _flightOrder.Clear();
                if (isReconnect && _options.ResubscribeWhenSessionLost && _subscriptions.Count > 0)
                {
                    var id = NextPacketId();
                    var reply = new TaskCompletionSource<MqttPacket>(TaskCreationOptions.RunContinuationsAsynchronously);
                    _requests[id] = reply;
                    connection.Send(new MqttSubscribePacket { PacketId = id, Subscriptions = _subscriptions.Select(Copy).ToList() });
                }
            }
            Pump();
        }
        foreach (var p in completedBySession) Complete(p, new MqttPublishResult(MqttReasonCode.Success));
        connection.Start();
        return true;
    }

    private async Task SuperviseAsync(MqttConnection connection, CancellationToken run)
    {
        while (true)
        {
            var info = await connection.Closed.ConfigureAwait(false);
            bool reconnect;
            List<PendingPublish> abandoned = [];
            List<TaskCompletionSource<MqttPacket>> requests;
            lock (_gate)
            {
                if (_connection != connection) return;
                _connection = null;
                requests = TakeRequests();
                reconnect = _options.Reconnect.Enabled && _state == State.Connected;
                if (_state == State.Connected) _state = reconnect ? State.Reconnecting : State.Stopped;
                if (!reconnect) abandoned = TakeAllPublishes();
            }
            var lost = new MqttClientException($"The connection was lost: {info.Reason}.", info.ReasonCode, info.Exception);
            foreach (var r in requests) r.TrySetException(lost);
            foreach (var p in abandoned) Fail(p, lost);
            DeviceSdkTelemetry.Disconnects.Add(1, _clientTag, new("reason", info.Reason.ToString()));
            RaiseDisconnected(new MqttDisconnectedEventArgs(info.Reason, info.ReasonCode, info.ReasonString, info.Exception, reconnect));
            if (!reconnect) return;
            var next = await ReconnectAsync(run).ConfigureAwait(false);
            if (next is null) return;
            connection = next;
        }
    }

    private async Task<MqttConnection?> ReconnectAsync(CancellationToken run)
    {
        var cleanStart = _options.ProtocolVersion == MqttProtocolVersion.V311 && _options.CleanStart;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await Task.Delay(_backoff.Delay(attempt), _time, run).ConfigureAwait(false);
                var connection = await MqttConnection.OpenAsync(_options, cleanStart, this, _time, run).ConfigureAwait(false);
                DeviceSdkTelemetry.ReconnectAttempts.Add(1, _clientTag, new("outcome", "success"));
                if (!Activate(connection, isReconnect: true, run: null))
                {
                    connection.Close(new DisconnectInfo(MqttDisconnectReason.ClientRequested, null, null, null));
                    return null;
                }
                RaiseConnected(connection.Result, isReconnect: true);
                return connection;
            }
            catch (OperationCanceledException) when (run.IsCancellationRequested)
            {
                return null;
            }
            catch (MqttConnectException)
            {
                DeviceSdkTelemetry.ReconnectAttempts.Add(1, _clientTag, new("outcome", "failure"));
            }
        }
    }

    private List<PendingPublish> TakeAllPublishes()
    {
        var all = new List<PendingPublish>(_flights.Count + _queue.Count);
        foreach (var f in _flightOrder) all.Add(f.Publish);
        _flights.Clear();
        _flightOrder.Clear();
        while (_queue.First is { } node)
        {
            Dequeue(node.Value);
            all.Add(node.Value);
        }
        return all;
    }

    private List<TaskCompletionSource<MqttPacket>> TakeRequests()
    {
        var list = _requests.Values.ToList();
        _requests.Clear();
        return list;
    }

    ValueTask IMqttConnectionOwner.OnPacketAsync(MqttConnection connection, MqttPacket packet)
    {
        switch (packet)
        {
            case MqttPublishPacket publish:
                return OnPublishReceived(connection, publish);
            case MqttPubAckPacket ack:
                OnPubAck(connection, ack);
                break;
            case MqttPubRecPacket rec:
                OnPubRec(connection, rec);
                break;
            case MqttPubCompPacket comp:
                OnPubComp(connection, comp);
                break;
            case MqttPubRelPacket rel:
                bool known;
                lock (_gate) known = _incomingQoS2.Remove(rel.PacketId);
                connection.Send(new MqttPubCompPacket { PacketId = rel.PacketId, ReasonCode = known ? MqttReasonCode.Success : MqttReasonCode.PacketIdentifierNotFound });
                break;
            case MqttSubAckPacket or MqttUnsubAckPacket:
                var id = packet is MqttSubAckPacket s ? s.PacketId : ((MqttUnsubAckPacket)packet).PacketId;
                TaskCompletionSource<MqttPacket>? reply;
                lock (_gate) _requests.Remove(id, out reply);
                reply?.TrySetResult(packet);
                break;
            case MqttAuthPacket:
                throw new MqttProtocolException(MqttReasonCode.BadAuthenticationMethod, "Enhanced authentication (AUTH) is not supported by this client.");
            default:
                throw new MqttProtocolException(MqttReasonCode.ProtocolError, $"A server must not send {packet.Type}.");
        }
        return ValueTask.CompletedTask;
    }

    private void OnPubAck(MqttConnection connection, MqttPubAckPacket ack)
    {
        PendingPublish? done = null;
        lock (_gate)
        {
            if (connection != _connection) return;
            if (_flights.TryGetValue(ack.PacketId, out var flight) && flight.Stage == FlightStage.AwaitingPubAck)
            {
                RemoveFlight(flight);
                done = flight.Publish;
                Pump();
            }
        }
        if (done is not null) Complete(done, new MqttPublishResult(ack.ReasonCode, ack.Properties?.ReasonString));
    }

    private void OnPubRec(MqttConnection connection, MqttPubRecPacket rec)
    {
        PendingPublish? refused = null;
        lock (_gate)
        {
            if (connection != _connection) return;
            if (!_flights.TryGetValue(rec.PacketId, out var flight) || flight.Stage == FlightStage.AwaitingPubAck)
            {
                connection.Send(new MqttPubRelPacket { PacketId = rec.PacketId, ReasonCode = MqttReasonCode.PacketIdentifierNotFound });
                return;
            }
            if (rec.ReasonCode.IsError())
            {
                RemoveFlight(flight);
                refused = flight.Publish;
                Pump();
            }
            else
            {
                flight.Stage = FlightStage.AwaitingPubComp;
                connection.Send(new MqttPubRelPacket { PacketId = rec.PacketId });
            }
        }
        if (refused is not null) Complete(refused, new MqttPublishResult(rec.ReasonCode, rec.Properties?.ReasonString));
    }

    private void OnPubComp(MqttConnection connection, MqttPubCompPacket comp)
    {
        PendingPublish? done = null;
        lock (_gate)
        {
            if (connection != _connection) return;
            if (_flights.TryGetValue(comp.PacketId, out var flight) && flight.Stage == FlightStage.AwaitingPubComp)
            {
                RemoveFlight(flight);
                done = flight.Publish;
                Pump();
            }
        }
        // The server accepted the message at PUBREC; a PUBCOMP code (0x92 after it lost state) does not undo that.
        if (done is not null) Complete(done, new MqttPublishResult(MqttReasonCode.Success, comp.Properties?.ReasonString));
    }

    private void RemoveFlight(Flight flight)
    {
        _flights.Remove(flight.PacketId);
        _flightOrder.Remove(flight.Node!);
    }

    private ValueTask OnPublishReceived(MqttConnection connection, MqttPublishPacket publish)
    {
        if (publish.Topic.Length == 0 || publish.Properties?.TopicAlias is not null)
        {
            throw new MqttProtocolException(MqttReasonCode.TopicAliasInvalid, "This client allows no topic aliases (Topic Alias Maximum 0).");
        }
        var properties = publish.Properties;
        var message = new MqttMessage
        {
            Topic = publish.Topic,
            Payload = publish.Payload.ToArray(),
            QoS = publish.QoS,
            Retain = publish.Retain,
            Dup = publish.Dup,
            PayloadFormat = properties?.PayloadFormatIndicator ?? MqttPayloadFormat.Unspecified,
            ContentType = properties?.ContentType,
            MessageExpiryInterval = properties?.MessageExpiryInterval,
            ResponseTopic = properties?.ResponseTopic,
            CorrelationData = properties?.CorrelationData?.ToArray(),
            UserProperties = properties?.UserProperties?.ToArray() ?? [],
        };
        lock (_gate) _received++;
        DeviceSdkTelemetry.Received.Add(1, _clientTag);
        MqttPacket? ack = null;
        var deliver = true;
        switch (publish.QoS)
        {
            case MqttQualityOfService.AtLeastOnce:
                ack = new MqttPubAckPacket { PacketId = publish.PacketId };
                break;
            case MqttQualityOfService.ExactlyOnce:
                lock (_gate) deliver = _incomingQoS2.Add(publish.PacketId);
                ack = new MqttPubRecPacket { PacketId = publish.PacketId };
                break;
        }
        if (!deliver || _inbox.Writer.TryWrite(message))
        {
            if (ack is not null) connection.Send(ack);
            return ValueTask.CompletedTask;
        }
        return DeliverWhenRoomAsync(connection, message, ack);
    }

    private async ValueTask DeliverWhenRoomAsync(MqttConnection connection, MqttMessage message, MqttPacket? ack)
    {
        try
        {
            await _inbox.Writer.WriteAsync(message, _disposing.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ChannelClosedException or OperationCanceledException)
        {
            return;
        }
        if (ack is not null) connection.Send(ack);
    }

    void IMqttConnectionOwner.OnPublishWritten(PendingPublish publish) => Complete(publish, new MqttPublishResult(MqttReasonCode.Success));

    void IMqttConnectionOwner.OnPublishNotWritten(PendingPublish publish) =>
        Fail(publish, new MqttClientException("The connection closed before the QoS 0 message was written."));

    private async Task DispatchAsync()
    {
        var token = _disposing.Token;
        try
        {
            await foreach (var message in _inbox.Reader.ReadAllAsync(token).ConfigureAwait(false))
            {
                if (MessageHandler is not { } handler) continue;
                try
                {
                    await handler(message, token).ConfigureAwait(false);
                }
                catch (Exception) when (!token.IsCancellationRequested)
                {
                    DeviceSdkTelemetry.HandlerErrors.Add(1, _clientTag, new("handler", "message"));
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
    }

    private void RaiseConnected(MqttConnectResult result, bool isReconnect)
    {
        try
        {
            Connected?.Invoke(this, new MqttConnectedEventArgs(result, isReconnect));
        }
        catch (Exception)
        {
            DeviceSdkTelemetry.HandlerErrors.Add(1, _clientTag, new("handler", "connected"));
        }
    }

    private void RaiseDisconnected(MqttDisconnectedEventArgs args)
    {
        try
        {
            Disconnected?.Invoke(this, args);
        }
        catch (Exception)
        {
            DeviceSdkTelemetry.HandlerErrors.Add(1, _clientTag, new("handler", "disconnected"));
        }
    }
}

/// <summary>Counters of one client since it was created.</summary>
public sealed record MqttClientStatistics(
    long Published,
    long Completed,
    long Failed,
    long Dropped,
    long Resent,
    long Received,
    long Reconnects,
    int Queued,
    int InFlight);
