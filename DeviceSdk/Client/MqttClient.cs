using System.Diagnostics;
using System.Threading.Channels;
using Net = MQTTnet;
using NetExceptions = MQTTnet.Exceptions;

namespace CloudEdge.DeviceSdk;

/// <summary>
/// A device's MQTT 5.0 / 3.1.1 client on MQTTnet's <c>IMqttClient</c>: automatic reconnection with jittered
/// exponential backoff, QoS 1/2 publishes that are sent again after a lost connection, a bounded offline queue
/// (optionally durable on disk), the server's limits honoured, and received messages dispatched off the network loop
/// through a bounded channel. Thread-safe: publish, subscribe and disconnect may be called concurrently.
/// </summary>
public sealed partial class MqttClient : IAsyncDisposable
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
    private readonly bool _v5;
    private readonly object _gate = new();
    private readonly LinkedList<PendingPublish> _queue = new();
    private readonly LinkedList<PendingPublish> _flights = new();
    private readonly List<MqttSubscription> _subscriptions = [];
    private readonly Dictionary<string, ushort> _topicAliases = new(StringComparer.Ordinal);
    private readonly Channel<MqttMessage> _inbox;
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly CancellationTokenSource _disposing = new();
    private readonly Net.MqttClientFactory _factory = new();
    private readonly DurableQueueStore? _store;
    /// <summary>QoS 2 packet ids delivered to the handler and not yet released by the server's PUBREL.</summary>
    private readonly HashSet<ushort> _incomingQoS2 = [];
    /// <summary>MQTTnet's client of the current connection; one per connection, so a dead link can be dropped without a DISCONNECT.</summary>
    private Net.IMqttClient? _net;
    private long _lastReceived;
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<Net.IMqttClient, object> _watched = new();
    private State _state = State.Created;
    private MqttConnectResult? _connection;
    private int _generation;
    private CancellationTokenSource? _run;
    private Task? _sender;
    private Task? _dispatcher;
    private Task? _reconnect;
    private long _queuedBytes;
    private long _published, _completed, _failed, _dropped, _resent, _received, _reconnects;

    public MqttClient(MqttClientOptions options, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _v5 = options.ProtocolVersion == MqttProtocolVersion.V500;
        _time = timeProvider ?? TimeProvider.System;
        _backoff = new ReconnectBackoff(options.Reconnect.InitialDelay, options.Reconnect.MaximumDelay, Random.Shared.NextDouble);
        _clientTag = new("mqtt.client.id", options.ClientId);
        _inbox = Channel.CreateBounded<MqttMessage>(new BoundedChannelOptions(options.InboxCapacity)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
        if (options.DurableQueue is { } durable)
        {
            _store = new DurableQueueStore(durable.Directory, options.ClientId);
            foreach (var stored in _store.Load())
            {
                var pending = new PendingPublish(stored.Message, null, stored.TraceParent, stored.TraceState, _time.GetTimestamp()) { StoreId = stored.Id };
                Enqueue(pending, atFront: false);
            }
        }
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
            lock (_gate) return _connection;
        }
    }

    /// <summary>When the server was last known alive (client clock timestamp): for tests that drive the keep-alive by hand.</summary>
    internal long LastHeardFrom => Volatile.Read(ref _lastReceived);

    /// <summary>The durable queue's file, or null when the offline queue lives in memory only.</summary>
    public string? DurableQueuePath => _store?.Path;

    /// <summary>A consistent snapshot of this client's counters (the same events as the Meter's instruments).</summary>
    public MqttClientStatistics GetStatistics()
    {
        lock (_gate)
        {
            return new MqttClientStatistics(_published, _completed, _failed, _dropped, _resent, _received, _reconnects, _queue.Count, _flights.Count);
        }
    }

    /// <summary>
    /// The highest reading sequence this client's durable queue ever accepted for <paramref name="deviceId"/>, or 0
    /// (always 0 without a durable queue): a restarted device continues from the next number.
    /// </summary>
    public long LastQueuedSequence(string deviceId)
    {
        lock (_gate) return _store?.LastSequence(deviceId) ?? 0;
    }

    public async Task<MqttConnectResult> ConnectAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_state == State.Disposed, this);
            if (_state is not (State.Created or State.Stopped)) throw new InvalidOperationException($"The client is already {_state}.");
            _state = State.Connecting;
            _run = new CancellationTokenSource();
        }
        try
        {
            var (result, net) = await OpenAsync(_options.CleanStart, cancellationToken).ConfigureAwait(false);
            if (!Activate(result, net, isReconnect: false))
            {
                await CloseAsync(net).ConfigureAwait(false);
                throw new MqttClientException("The client was stopped while connecting.");
            }
            _dispatcher ??= Task.Run(DispatchAsync);
            _sender ??= Task.Run(SendLoopAsync);
            Wake();
            RaiseConnected(result, isReconnect: false);
            return result;
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

    /// <summary>
    /// Sends DISCONNECT and closes. Publishes still queued or unacknowledged fail with <see cref="MqttClientException"/>;
    /// with a durable queue they stay on disk and go out after the next connect.
    /// </summary>
    /// <param name="reasonCode">v5: <see cref="MqttReasonCode.DisconnectWithWillMessage"/> asks the server to publish the will.</param>
    public async Task DisconnectAsync(MqttReasonCode reasonCode = MqttReasonCode.Success, CancellationToken cancellationToken = default)
    {
        List<PendingPublish> abandoned;
        Net.IMqttClient? net;
        lock (_gate)
        {
            if (_state is State.Created or State.Stopped or State.Disposed) return;
            _state = State.Stopped;
            net = _net;
            _net = null;
            _connection = null;
            _generation++;
            _run?.Cancel();
            abandoned = TakeAllPublishes();
        }
        var stopped = new MqttClientException(_store is null
            ? "The client was disconnected by the application before the operation completed."
            : "The client was disconnected by the application; the publish stays in the durable queue and goes out after the next connect.");
        foreach (var p in abandoned) Fail(p, stopped);
        if (_reconnect is { } reconnect) await reconnect.ConfigureAwait(false);
        if (net is not null) await CloseAsync(net, reasonCode, cancellationToken).ConfigureAwait(false);
        RaiseDisconnected(new MqttDisconnectedEventArgs(MqttDisconnectReason.ClientRequested, reasonCode, null, null, willReconnect: false));
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
        _wake.Writer.TryComplete();
        _disposing.Cancel();
        if (_sender is { } sender) await sender.ConfigureAwait(false);
        if (_dispatcher is { } dispatcher) await dispatcher.ConfigureAwait(false);
        lock (_gate) _store?.Dispose();
        _run?.Dispose();
        _disposing.Dispose();
    }

    /// <summary>
    /// Publishes one message. QoS 0 completes when written to the socket, QoS 1 on PUBACK, QoS 2 on PUBCOMP (or an
    /// error PUBREC). While the connection is down the publish waits in the offline queue and survives reconnects;
    /// a QoS 1/2 publish whose connection died before its acknowledgement is sent again (at least once).
    /// Cancelling stops the wait; a publish already sent may still be delivered.
    /// </summary>
    public Task<MqttPublishResult> PublishAsync(MqttMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ValidateForPublish(message);
        var activity = StartPublishActivity(message.Topic, message.QoS);
        return PublishCoreAsync(message, activity, null, cancellationToken);
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
        var net = CurrentConnection();
        var options = new Net.MqttClientSubscribeOptions { TopicFilters = copies.Select(s => MqttNetMapping.TopicFilter(s, _v5)).ToList() };
        var result = await RunRequestAsync(ct => net.SubscribeAsync(options, ct), cancellationToken).ConfigureAwait(false);
        var codes = result.Items.Select(i => (MqttReasonCode)(byte)i.ResultCode).ToList();
        lock (_gate)
        {
            for (var i = 0; i < copies.Count && i < codes.Count; i++)
            {
                if (codes[i].IsError()) continue;
                _subscriptions.RemoveAll(s => s.TopicFilter == copies[i].TopicFilter);
                _subscriptions.Add(copies[i]);
            }
        }
        return new MqttSubscribeResult(codes, result.ReasonString);
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
        var net = CurrentConnection();
        var options = new Net.MqttClientUnsubscribeOptions { TopicFilters = filters };
        var result = await RunRequestAsync(ct => net.UnsubscribeAsync(options, ct), cancellationToken).ConfigureAwait(false);
        lock (_gate) _subscriptions.RemoveAll(s => filters.Contains(s.TopicFilter));
        // MQTT 3.1.1's UNSUBACK carries no codes; MQTTnet reports success for each filter then.
        return new MqttUnsubscribeResult(result.Items.Select(i => (MqttReasonCode)(byte)i.ResultCode).ToList(), result.ReasonString);
    }

    private Net.IMqttClient CurrentConnection()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_state == State.Disposed, this);
            if (_state != State.Connected || _net is not { } net) throw new MqttClientException("The client is not connected.");
            return net;
        }
    }

    /// <summary>Runs a SUBSCRIBE/UNSUBSCRIBE on MQTTnet; a lost connection is an <see cref="MqttClientException"/>.</summary>
    private async Task<T> RunRequestAsync<T>(Func<CancellationToken, Task<T>> request, CancellationToken cancellationToken)
    {
        try
        {
            var result = await request(cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _lastReceived, _time.GetTimestamp());
            return result;
        }
        catch (NetExceptions.MqttCommunicationException e)
        {
            throw new MqttClientException($"The connection was lost: {e.Message}", null, e);
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

    /// <param name="reading">Set for telemetry: the durable queue records the device's sequence with the row.</param>
    private async Task<MqttPublishResult> PublishCoreAsync(MqttMessage message, Activity? activity, SensorReading? reading, CancellationToken cancellationToken)
    {
        var (traceParent, traceState) = TraceContext(activity);
        var pending = new PendingPublish(message, activity, traceParent, traceState, _time.GetTimestamp());
        PendingPublish? evicted = null;
        var refused = false;
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
            if (IsFull(pending.Size))
            {
                if (_options.OfflineQueueOverflow == MqttOfflineQueueOverflow.DropOldest && _queue.First is { } oldest)
                {
                    evicted = oldest.Value;
                    Dequeue(evicted);
                    Forget(evicted);
                }
                else
                {
                    refused = true;
                }
            }
            if (!refused)
            {
                if (_store is not null)
                {
                    pending.StoreId = reading is null
                        ? _store.Append(message, traceParent, traceState, null, 0)
                        : _store.Append(message, traceParent, traceState, reading.DeviceId, reading.Sequence);
                }
                Enqueue(pending, atFront: false);
            }
        }
        if (evicted is not null || refused)
        {
            lock (_gate) _dropped++;
            DeviceSdkTelemetry.OfflineDropped.Add(1, _clientTag);
            Fail(evicted ?? pending, new MqttMessageDroppedException(message.Topic, _options.OfflineQueueOverflow));
        }
        else
        {
            Wake();
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
                    Forget(pending);
                    removed = true;
                }
            }
            if (removed) Fail(pending, new OperationCanceledException(cancellationToken));
            throw;
        }
    }

    /// <summary>Whether one more publish of <paramref name="size"/> bytes exceeds the queue's bound. Caller holds the gate.</summary>
    private bool IsFull(long size) => _options.DurableQueue is { } durable
        ? _queue.Count >= durable.MaximumMessages || (_queue.Count > 0 && _queuedBytes + size > durable.MaximumBytes)
        : _queue.Count >= _options.OfflineQueueCapacity;

    private void Enqueue(PendingPublish pending, bool atFront)
    {
        pending.QueueNode = atFront ? _queue.AddFirst(pending) : _queue.AddLast(pending);
        _queuedBytes += pending.Size;
        DeviceSdkTelemetry.OfflineDepth.Add(1, _clientTag);
    }

    private void Dequeue(PendingPublish pending)
    {
        _queue.Remove(pending.QueueNode!);
        pending.QueueNode = null;
        _queuedBytes -= pending.Size;
        DeviceSdkTelemetry.OfflineDepth.Add(-1, _clientTag);
    }

    /// <summary>Removes a finished publish from the durable queue. Caller holds the gate.</summary>
    private void Forget(PendingPublish pending)
    {
        if (pending.StoreId is not { } id || _store is null) return;
        _store.Delete(id);
        pending.StoreId = null;
    }

    private void Wake() => _wake.Writer.TryWrite(true);

    /// <summary>
    /// The one loop that hands queued publishes to MQTTnet, in queue order, while the server's Receive Maximum allows.
    /// MQTTnet writes packets in the order PublishAsync is called, so topic aliases assigned here are safe.
    /// </summary>
    private async Task SendLoopAsync()
    {
        var token = _disposing.Token;
        try
        {
            while (await _wake.Reader.WaitToReadAsync(token).ConfigureAwait(false))
            {
                _wake.Reader.TryRead(out _);
                while (TryTakeNext() is { } next)
                {
                    var (pending, generation, net, message, refusal) = next;
                    if (refusal is not null)
                    {
                        Fail(pending, refusal);
                        continue;
                    }
                    Task<Net.MqttClientPublishResult> sent;
                    try
                    {
                        sent = net!.PublishAsync(message!, CancellationToken.None);
                    }
                    catch (Exception e)
                    {
                        sent = Task.FromException<Net.MqttClientPublishResult>(e);
                    }
                    _ = OnPublishDoneAsync(sent, pending, generation, net!);
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
    }

    private (PendingPublish Pending, int Generation, Net.IMqttClient? Net, Net.MqttApplicationMessage? Message, MqttClientException? Refusal)? TryTakeNext()
    {
        lock (_gate)
        {
            if (_state != State.Connected || _connection is not { } connection || _net is not { } net || _queue.First is not { } node) return null;
            var pending = node.Value;
            if (pending.Message.QoS > MqttQualityOfService.AtMostOnce && _flights.Count >= connection.ReceiveMaximum) return null;
            // MQTTnet sends each PUBREL from its own continuation, so concurrent QoS 2 flows could be released (and
            // delivered) out of order: a QoS 2 publish goes alone, and nothing overtakes it.
            if (_flights.First is { } flying && (flying.Value.Message.QoS == MqttQualityOfService.ExactlyOnce || pending.Message.QoS == MqttQualityOfService.ExactlyOnce)) return null;
            Dequeue(pending);
            if (Refusal(pending, connection) is { } refusal)
            {
                Forget(pending);
                return (pending, _generation, null, null, refusal);
            }
            pending.FlightNode = _flights.AddLast(pending);
            var (topic, alias) = TopicWithAlias(pending.Message.Topic, connection);
            return (pending, _generation, net, MqttNetMapping.ApplicationMessage(pending, _v5, topic, alias), null);
        }
    }

    /// <summary>v5 topic aliases for this connection: the first use sends topic and alias, later ones the alias alone.</summary>
    private (string Topic, ushort Alias) TopicWithAlias(string topic, MqttConnectResult connection)
    {
        if (!_v5 || !_options.UseTopicAliases || connection.TopicAliasMaximum == 0) return (topic, 0);
        if (_topicAliases.TryGetValue(topic, out var alias)) return ("", alias);
        if (_topicAliases.Count >= connection.TopicAliasMaximum) return (topic, 0);
        alias = (ushort)(_topicAliases.Count + 1);
        _topicAliases[topic] = alias;
        return (topic, alias);
    }

    private MqttClientException? Refusal(PendingPublish pending, MqttConnectResult connection)
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
        var size = MqttNetMapping.EstimatedSize(pending, _v5);
        if (size > connection.MaximumPacketSize)
        {
            return new MqttClientException($"The PUBLISH is up to {size} bytes; the server's Maximum Packet Size is {connection.MaximumPacketSize}.", MqttReasonCode.PacketTooLarge);
        }
        return null;
    }

    private async Task OnPublishDoneAsync(Task<Net.MqttClientPublishResult> sent, PendingPublish pending, int generation, Net.IMqttClient net)
    {
        Net.MqttClientPublishResult result;
        try
        {
            result = await sent.ConfigureAwait(false);
        }
        catch (Exception e)
        {
            bool fail;
            lock (_gate)
            {
                // Already moved back to the queue by the disconnect, or the connection is going and the disconnect will.
                if (pending.FlightNode is null || generation != _generation || !net.IsConnected) return;
                _flights.Remove(pending.FlightNode);
                pending.FlightNode = null;
                fail = e is NetExceptions.MqttProtocolViolationException or ArgumentException;
                if (fail) Forget(pending);
                else Enqueue(pending, atFront: true);
            }
            Wake();
            if (fail) Fail(pending, new MqttClientException($"MQTTnet refused the publish: {e.Message}", null, e));
            return;
        }
        Volatile.Write(ref _lastReceived, _time.GetTimestamp());
        lock (_gate)
        {
            if (pending.FlightNode is not null)
            {
                _flights.Remove(pending.FlightNode);
                pending.FlightNode = null;
            }
            else if (pending.QueueNode is not null)
            {
                // Acknowledged just as the connection died and it was queued again: it is delivered, do not send it twice.
                Dequeue(pending);
            }
            Forget(pending);
        }
        Wake();
        // A QoS 2 refusal comes in PUBREC; a PUBCOMP code after a successful PUBREC does not undo the acceptance.
        Complete(pending, new MqttPublishResult((MqttReasonCode)(byte)result.ReasonCode, result.ReasonString));
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
        // Nobody awaits a publish reloaded from the durable queue: observe its failure here.
        _ = pending.Completion.Task.Exception;
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

    /// <summary>Connects MQTTnet's client; every failure is an <see cref="MqttConnectException"/> saying why.</summary>
    private async Task<(MqttConnectResult Result, Net.IMqttClient Net)> OpenAsync(bool cleanStart, CancellationToken cancellationToken)
    {
        var net = _factory.CreateMqttClient();
        net.ApplicationMessageReceivedAsync += e => OnNetMessageAsync(net, e);
        net.DisconnectedAsync += e => OnNetDisconnectedAsync(net, e);
        // A persistent session may hand over QoS 2 messages right after CONNACK.
        bool watch;
        lock (_gate) watch = !cleanStart || _subscriptions.Any(s => s.QoS == MqttQualityOfService.ExactlyOnce);
        if (watch) WatchQoS2Releases(net);
        try
        {
            return (await ConnectAsync(net, cleanStart, cancellationToken).ConfigureAwait(false), net);
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    private async Task<MqttConnectResult> ConnectAsync(Net.IMqttClient net, bool cleanStart, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(_options.ConnectTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        Net.MqttClientConnectResult result;
        try
        {
            result = await net.ConnectAsync(MqttNetMapping.ClientOptions(_options, cleanStart), linked.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new MqttConnectException($"No CONNACK from {_options.Host}:{_options.EffectivePort} within {_options.ConnectTimeout.TotalSeconds:0.###} s.", e);
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested)
        {
            // MQTTnet may wrap the cancellation; the caller asked for it and gets it as such.
            throw e as OperationCanceledException ?? new OperationCanceledException("The connect was cancelled.", e, cancellationToken);
        }
        catch (Exception e)
        {
            // MQTTnet wraps the socket or TLS failure; the application wants the cause (SocketException, AuthenticationException).
            var cause = e;
            while (cause is NetExceptions.MqttCommunicationException { InnerException: { } inner }) cause = inner;
            throw new MqttConnectException($"Could not connect to {_options.Host}:{_options.EffectivePort}: {cause.Message}", cause);
        }
        if (result.ResultCode != Net.MqttClientConnectResultCode.Success)
        {
            throw new MqttConnectException((MqttReasonCode)(byte)result.ResultCode, result.ReasonString);
        }
        return MqttNetMapping.ConnectResult(result, _options);
    }

    private static Task DropAsync(Net.IMqttClient net)
    {
        net.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Sends DISCONNECT if the link is up, then lets the MQTTnet client go.</summary>
    private async Task CloseAsync(Net.IMqttClient net, MqttReasonCode reasonCode = MqttReasonCode.Success, CancellationToken cancellationToken = default)
    {
        try
        {
            if (net.IsConnected)
            {
                // 3.1.1's DISCONNECT has no reason code; asking for the will there is not possible.
                var reason = _v5 ? (Net.MqttClientDisconnectOptionsReason)(byte)reasonCode : Net.MqttClientDisconnectOptionsReason.NormalDisconnection;
                var options = new Net.MqttClientDisconnectOptions { Reason = reason };
                await net.DisconnectAsync(options, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is NetExceptions.MqttCommunicationException or OperationCanceledException or InvalidOperationException)
        {
            // The connection was already going; there is nothing left to tell the server.
        }
        finally
        {
            net.Dispose();
        }
    }

    /// <summary>Installs a fresh connection. False if the client stopped meanwhile.</summary>
    private bool Activate(MqttConnectResult result, Net.IMqttClient net, bool isReconnect)
    {
        List<MqttSubscription>? resubscribe = null;
        int generation;
        CancellationToken run;
        lock (_gate)
        {
            if (isReconnect ? _state != State.Reconnecting : _state != State.Connecting) return false;
            _connection = result;
            _net = net;
            generation = _generation;
            run = _run?.Token ?? CancellationToken.None;
            if (!result.SessionPresent) _incomingQoS2.Clear();
            Volatile.Write(ref _lastReceived, _time.GetTimestamp());
            _state = State.Connected;
            _topicAliases.Clear();
            if (isReconnect) _reconnects++;
            if (isReconnect && !result.SessionPresent && _options.ResubscribeWhenSessionLost && _subscriptions.Count > 0)
            {
                resubscribe = _subscriptions.Select(Copy).ToList();
            }
        }
        if (resubscribe is not null) _ = ResubscribeAsync(net, resubscribe);
        if (result.KeepAlive > TimeSpan.Zero) _ = Task.Run(() => KeepAliveAsync(net, generation, result.KeepAlive, run));
        Wake();
        return true;
    }

    private async Task ResubscribeAsync(Net.IMqttClient net, List<MqttSubscription> subscriptions)
    {
        try
        {
            var options = new Net.MqttClientSubscribeOptions { TopicFilters = subscriptions.Select(s => MqttNetMapping.TopicFilter(s, _v5)).ToList() };
            await net.SubscribeAsync(options, _disposing.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NetExceptions.MqttCommunicationException or OperationCanceledException)
        {
            // The connection went again; the next reconnect subscribes anew.
        }
    }

    private Task OnNetDisconnectedAsync(Net.IMqttClient net, Net.MqttClientDisconnectedEventArgs e)
    {
        if (!e.ClientWasConnected) return Task.CompletedTask;
        var (reason, code, exception) = Classify(e);
        if (ConnectionLost(net, reason, code, e.ReasonString, exception)) net.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>
    /// The connection of <paramref name="net"/> is gone: unacknowledged publishes go back to the queue, the application
    /// hears about it, and reconnection starts. False when that connection was no longer the current one.
    /// </summary>
    private bool ConnectionLost(Net.IMqttClient net, MqttDisconnectReason reason, MqttReasonCode? code, string? reasonString, Exception? exception)
    {
        bool reconnect;
        List<PendingPublish> abandoned = [];
        CancellationToken run;
        lock (_gate)
        {
            if (_state != State.Connected || _net != net) return false;
            _generation++;
            _net = null;
            _connection = null;
            // Unacknowledged QoS 1/2 publishes go out again, ahead of the queue and in their order: MQTTnet keeps no
            // in-flight state across connections, so this is a new PUBLISH (at least once, never lost).
            for (var node = _flights.Last; node is not null; node = node.Previous)
            {
                var pending = node.Value;
                pending.FlightNode = null;
                Enqueue(pending, atFront: true);
                _resent++;
                DeviceSdkTelemetry.Resent.Add(1, _clientTag);
            }
            _flights.Clear();
            reconnect = _options.Reconnect.Enabled;
            _state = reconnect ? State.Reconnecting : State.Stopped;
            if (!reconnect) abandoned = TakeAllPublishes();
            run = _run?.Token ?? CancellationToken.None;
        }
        var lost = new MqttClientException($"The connection was lost: {reason}.", code, exception);
        foreach (var p in abandoned) Fail(p, lost);
        DeviceSdkTelemetry.Disconnects.Add(1, _clientTag, new("reason", reason.ToString()));
        RaiseDisconnected(new MqttDisconnectedEventArgs(reason, code, reasonString, exception, reconnect));
        if (reconnect) _reconnect = Task.Run(() => ReconnectAsync(run));
        return true;
    }

    /// <summary>
    /// Keep-alive on the client's clock: a PINGREQ once the server has been silent for half the keep-alive, and the
    /// link dropped as half-open after one and a half. The server's Server Keep Alive, when sent, is the period.
    /// </summary>
    private async Task KeepAliveAsync(Net.IMqttClient net, int generation, TimeSpan keepAlive, CancellationToken run)
    {
        var tick = keepAlive / 8;
        long? lastPing = null;
        try
        {
            while (true)
            {
                await Task.Delay(tick, _time, run).ConfigureAwait(false);
                lock (_gate)
                {
                    if (_generation != generation) return;
                }
                var silent = _time.GetElapsedTime(Volatile.Read(ref _lastReceived));
                if (silent >= keepAlive * 1.5)
                {
                    // No DISCONNECT on a dead link: the server publishes the will when it notices.
                    var error = new TimeoutException($"Nothing from the server for {silent.TotalSeconds:0.#} s (keep-alive {keepAlive.TotalSeconds:0} s).");
                    if (ConnectionLost(net, MqttDisconnectReason.KeepAliveTimeout, MqttReasonCode.KeepAliveTimeout, null, error)) net.Dispose();
                    return;
                }
                if (silent >= keepAlive / 2 && (lastPing is not { } last || _time.GetElapsedTime(last) >= keepAlive / 2))
                {
                    lastPing = _time.GetTimestamp();
                    _ = PingAsync(net, lastPing.Value, run);
                }
            }
        }
        catch (OperationCanceledException) when (run.IsCancellationRequested)
        {
        }
    }

    /// <summary>A PINGRESP proves the server was alive when the PINGREQ left, which is when the silence is measured from.</summary>
    private async Task PingAsync(Net.IMqttClient net, long sentAt, CancellationToken run)
    {
        try
        {
            await net.PingAsync(run).ConfigureAwait(false);
            var seen = Volatile.Read(ref _lastReceived);
            while (seen < sentAt)
            {
                var previous = Interlocked.CompareExchange(ref _lastReceived, sentAt, seen);
                if (previous == seen) break;
                seen = previous;
            }
        }
        catch (Exception e) when (e is NetExceptions.MqttCommunicationException or OperationCanceledException or ObjectDisposedException)
        {
            // The link is going; the silence check or MQTTnet's read loop ends it.
        }
    }

    private static (MqttDisconnectReason Reason, MqttReasonCode? Code, Exception? Exception) Classify(Net.MqttClientDisconnectedEventArgs e)
    {
        var code = (MqttReasonCode)(byte)e.Reason;
        return e.Exception switch
        {
            // A server DISCONNECT carries no exception and sets the reason; a socket closed from the other side neither.
            null when code == MqttReasonCode.Success && e.ReasonString is null => (MqttDisconnectReason.TransportClosed, null, null),
            null => (MqttDisconnectReason.ServerDisconnected, code, null),
            NetExceptions.MqttProtocolViolationException or MQTTnet.Adapter.MqttConnectingFailedException => (MqttDisconnectReason.ProtocolError, MqttReasonCode.ProtocolError, e.Exception),
            OperationCanceledException or NetExceptions.MqttCommunicationTimedOutException => (MqttDisconnectReason.KeepAliveTimeout, null, e.Exception),
            _ => (MqttDisconnectReason.TransportClosed, null, e.Exception),
        };
    }

    private async Task ReconnectAsync(CancellationToken run)
    {
        // v5 reconnects resume the session; 3.1.1 keeps the Clean Session flag as given.
        var cleanStart = !_v5 && _options.CleanStart;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await Task.Delay(_backoff.Delay(attempt), _time, run).ConfigureAwait(false);
                var (result, net) = await OpenAsync(cleanStart, run).ConfigureAwait(false);
                DeviceSdkTelemetry.ReconnectAttempts.Add(1, _clientTag, new("outcome", "success"));
                if (!Activate(result, net, isReconnect: true))
                {
                    await CloseAsync(net).ConfigureAwait(false);
                    return;
                }
                RaiseConnected(result, isReconnect: true);
                return;
            }
            catch (OperationCanceledException) when (run.IsCancellationRequested)
            {
                return;
            }
            catch (MqttConnectException)
            {
                DeviceSdkTelemetry.ReconnectAttempts.Add(1, _clientTag, new("outcome", "failure"));
            }
        }
    }

    /// <summary>Everything queued or in flight, for failing. A durable publish keeps its row and its place in the queue. Caller holds the gate.</summary>
    private List<PendingPublish> TakeAllPublishes()
    {
        var all = new List<PendingPublish>(_flights.Count + _queue.Count);
        for (var node = _flights.Last; node is not null; node = node.Previous)
        {
            node.Value.FlightNode = null;
            Enqueue(node.Value, atFront: true);
        }
        _flights.Clear();
        for (var node = _queue.First; node is not null;)
        {
            var next = node.Next;
            all.Add(node.Value);
            if (node.Value.StoreId is null) Dequeue(node.Value);
            node = next;
        }
        return all;
    }

    private async Task OnNetMessageAsync(Net.IMqttClient net, Net.MqttApplicationMessageReceivedEventArgs e)
    {
        Volatile.Write(ref _lastReceived, _time.GetTimestamp());
        if (e.ApplicationMessage.QualityOfServiceLevel > MQTTnet.Protocol.MqttQualityOfServiceLevel.ExactlyOnce)
        {
            // MQTTnet 5.2 lets a QoS 3 PUBLISH through; the spec calls it malformed and the connection must end.
            e.ProcessingFailed = true;
            var error = new MqttClientException("The server sent a PUBLISH with QoS 3.", MqttReasonCode.MalformedPacket);
            if (ConnectionLost(net, MqttDisconnectReason.ProtocolError, MqttReasonCode.MalformedPacket, null, error))
            {
                // Not awaited: MQTTnet's disconnect waits for this very handler to return. 3.1.1 just closes the socket.
                _ = Task.Run(() => _v5 ? CloseAsync(net, MqttReasonCode.MalformedPacket) : DropAsync(net));
            }
            return;
        }
        var message = MqttNetMapping.Received(e.ApplicationMessage);
        lock (_gate)
        {
            _received++;
            // MQTTnet hands every QoS 2 PUBLISH over, resends included; until PUBREL releases the id it is the same
            // message. Only on connections whose PUBRELs are watched (see WatchQoS2Releases).
            if (message.QoS == MqttQualityOfService.ExactlyOnce && _watched.TryGetValue(net, out _) && !_incomingQoS2.Add(e.PacketIdentifier) && message.Dup) return;
        }
        DeviceSdkTelemetry.Received.Add(1, _clientTag);
        // MQTTnet acknowledges after this returns: a full inbox holds the acknowledgement back (flow control), and the
        // read loop, keep-alive and PUBACKs of our own publishes keep running meanwhile.
        if (_inbox.Writer.TryWrite(message)) return;
        try
        {
            await _inbox.Writer.WriteAsync(message, _disposing.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ChannelClosedException or OperationCanceledException)
        {
            e.ProcessingFailed = true;
        }
    }

    /// <summary>
    /// Watches inbound PUBRELs (MQTTnet answers them itself) to know when a QoS 2 packet id is free again. MQTTnet's
    /// packet inspector copies every packet, so it is attached only before connecting, and only when QoS 2 messages can
    /// come: a resumed session, or a QoS 2 subscription made earlier.
    /// </summary>
    private void WatchQoS2Releases(Net.IMqttClient net)
    {
        if (!_watched.TryAdd(net, this)) return;
        net.InspectPacketAsync += e =>
        {
            // PUBREL: fixed header 0x62, the remaining length (a variable byte integer), then the packet id.
            var b = e.Buffer;
            if (e.Direction != MQTTnet.Diagnostics.PacketInspection.MqttPacketFlowDirection.Inbound || b.Length < 4 || b[0] != 0x62) return Task.CompletedTask;
            var i = 1;
            while (i < b.Length && (b[i] & 0x80) != 0) i++;
            if (i + 2 < b.Length)
            {
                var id = (ushort)((b[i + 1] << 8) | b[i + 2]);
                lock (_gate) _incomingQoS2.Remove(id);
            }
            return Task.CompletedTask;
        };
    }

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
