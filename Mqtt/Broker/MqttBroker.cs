using System.Collections.Concurrent;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CloudEdge.Mqtt.Broker;

/// <summary>
/// The broker: sessions, subscriptions, retained messages, wills and routing. Connections come from
/// Kestrel (<see cref="MqttConnectionHandler"/>); each runs in its own <see cref="MqttConnection"/>.
/// </summary>
public sealed class MqttBroker : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, MqttSession> _sessions = new(StringComparer.Ordinal);
    private readonly Lock _sessionsLock = new();
    private readonly ConcurrentDictionary<string, MqttApplicationMessage> _retained = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<MqttConnection, byte> _connections = new();
    private readonly IMqttPublishInterceptor[] _interceptors;
    private readonly MqttPersistence? _persistence;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ITimer? _sweepTimer;
    private long _dropped;
    private int _sweeping;

    public MqttBroker(
        IOptions<MqttBrokerOptions> options,
        MqttBrokerTelemetry telemetry,
        IEnumerable<IMqttPublishInterceptor>? interceptors = null,
        ILogger<MqttBroker>? logger = null,
        TimeProvider? timeProvider = null,
        IMqttBrokerStore? store = null)
    {
        Options = options.Value;
        Options.Validate();
        Telemetry = telemetry;
        _interceptors = interceptors?.ToArray() ?? [];
        Logger = (ILogger?)logger ?? NullLogger.Instance;
        Time = timeProvider ?? TimeProvider.System;
        if (store is null) _ready.SetResult();
        else _persistence = new MqttPersistence(this, store);
    }

    internal MqttBrokerOptions Options { get; }
    internal MqttBrokerTelemetry Telemetry { get; }
    internal ILogger Logger { get; }
    internal TimeProvider Time { get; }
    internal MqttSubscriptionTree Subscriptions { get; } = new();
    internal IReadOnlyList<IMqttPublishInterceptor> Interceptors => _interceptors;

    /// <summary>Open network connections (CONNECT received or not).</summary>
    public int ConnectionCount => _connections.Count;
    public int SessionCount => _sessions.Count;
    public int RetainedCount => _retained.Count;
    /// <summary>Messages not delivered for any reason (also in the "cloudedge.mqtt.messages.dropped" counter).</summary>
    public long DroppedMessages => Interlocked.Read(ref _dropped);

    /// <summary>Starts the timer that expires sessions and publishes delayed wills.</summary>
    public void Start() => _sweepTimer ??= Time.CreateTimer(_ => Sweep(), null, Options.SweepInterval, Options.SweepInterval);

    /// <summary>Loads stored sessions and retained messages (when a store is registered), then starts the timers.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_persistence is not null && !_ready.Task.IsCompleted)
        {
            try
            {
                await LoadAsync(_persistence, cancellationToken).ConfigureAwait(false);
                _persistence.Start();
                _ready.TrySetResult();
            }
            catch (Exception e)
            {
                _ready.TrySetException(e);
                throw;
            }
        }
        Start();
    }

    private async Task LoadAsync(MqttPersistence persistence, CancellationToken cancellationToken)
    {
        var stored = await persistence.StoreLoadAsync(cancellationToken).ConfigureAwait(false);
        var subscriptions = new List<(string Inner, MqttSubscriptionEntry Entry)>();
        foreach (var (clientId, bytes) in stored.Sessions)
        {
            var session = persistence.DecodeSession(clientId, bytes, subscriptions);
            _sessions[clientId] = session;
        }
        foreach (var (inner, entry) in subscriptions) Subscriptions.Add(inner, entry);
        foreach (var (topic, bytes) in stored.Retained)
        {
            var message = persistence.DecodeRetained(topic, bytes);
            if (!IsExpired(message)) _retained[topic] = message;
        }
        Logger.LogInformation("MQTT broker restored {Sessions} session(s) and {Retained} retained message(s)", stored.Sessions.Count, _retained.Count);
    }

    internal MqttSession? TryGetPersistentSession(string clientId) =>
        _sessions.TryGetValue(clientId, out var session) && !session.Ended && session.ExpiryInterval > 0 ? session : null;

    internal MqttApplicationMessage? TryGetRetained(string topic) => _retained.TryGetValue(topic, out var message) ? message : null;

    /// <summary>Marks a session for the next group commit; <paramref name="always"/> also when it is (now) not persistent, so its record goes.</summary>
    internal void SessionChanged(MqttSession session, bool always = false)
    {
        if (_persistence is not null && (always || session.ExpiryInterval > 0)) _persistence.SessionChanged(session.ClientId);
    }

    /// <summary>Sends DISCONNECT 0x8B (v5) to every client and closes every connection.</summary>
    public async Task StopAsync()
    {
        _sweepTimer?.Dispose();
        _sweepTimer = null;
        var closing = _connections.Keys.Select(c => c.CloseAsync(MqttReasonCode.ServerShuttingDown, "Server shutting down.")).ToArray();
        await Task.WhenAll(closing).ConfigureAwait(false);
        if (_persistence is not null) await _persistence.StopAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    /// <summary>Runs one client connection to its end; never throws for anything the client does.</summary>
    public async Task RunConnectionAsync(ConnectionContext context)
    {
        // Stored sessions must be in place before the first client can resume one.
        await _ready.Task.ConfigureAwait(false);
        var connection = new MqttConnection(this, context);
        _connections[connection] = 0;
        Telemetry.ActiveConnections.Add(1);
        try
        {
            await connection.RunAsync().ConfigureAwait(false);
        }
        finally
        {
            _connections.TryRemove(connection, out _);
            Telemetry.ActiveConnections.Add(-1);
        }
    }

    /// <summary>Publishes a message from the server side (no interceptors, no ACL).</summary>
    public void Publish(string topic, ReadOnlyMemory<byte> payload, MqttQualityOfService qos = MqttQualityOfService.AtMostOnce, bool retain = false, MqttProperties? properties = null)
    {
        if (!MqttTopic.IsValidTopicName(topic)) throw new ArgumentException("Not a valid topic name.", nameof(topic));
        Route(new MqttApplicationMessage
        {
            Topic = topic,
            Payload = payload.ToArray(),
            QoS = qos,
            Retain = retain,
            Properties = properties,
            ExpiresAt = ExpiryFrom(properties?.MessageExpiryInterval),
        });
    }

    internal long? ExpiryFrom(uint? seconds) => seconds is { } s ? Time.GetTimestamp() + (long)(s * (double)Time.TimestampFrequency) : null;

    internal bool IsExpired(MqttApplicationMessage message) => message.ExpiresAt is { } at && Time.GetTimestamp() >= at;

    // ---- authentication and authorization ----

    internal (MqttReasonCode Code, string? UserName) Authenticate(MqttConnectPacket connect, X509Certificate2? clientCertificate)
    {
        if (connect.UserName is { } user)
        {
            if (Options.Users.TryGetValue(user, out var hash) && connect.Password is { } password && MqttPasswordHasher.Verify(password.Span, hash))
            {
                return (MqttReasonCode.Success, user);
            }
            return (MqttReasonCode.BadUserNameOrPassword, null);
        }
        if (clientCertificate is not null && Options.AllowClientCertificateAuthentication)
        {
            return (MqttReasonCode.Success, clientCertificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false));
        }
        if (connect.Password is not null) return (MqttReasonCode.BadUserNameOrPassword, null);
        return Options.AllowAnonymous ? (MqttReasonCode.Success, null) : (MqttReasonCode.NotAuthorized, null);
    }

    internal bool Authorize(MqttAclAccess access, string clientId, string? userName, string topicOrFilter)
    {
        var rules = Options.AclRules;
        if (rules.Count == 0) return true;
        foreach (var rule in rules)
        {
            if ((rule.Access & access) == 0) continue;
            if (rule.UserName is not null && rule.UserName != userName) continue;
            if (rule.ClientId is not null && rule.ClientId != clientId) continue;
            var pattern = rule.Topic;
            if (pattern.Contains("{clientid}", StringComparison.Ordinal))
            {
                if (!IsSafeSubstitution(clientId)) continue;
                pattern = pattern.Replace("{clientid}", clientId, StringComparison.Ordinal);
            }
            if (pattern.Contains("{username}", StringComparison.Ordinal))
            {
                if (userName is null || !IsSafeSubstitution(userName)) continue;
                pattern = pattern.Replace("{username}", userName, StringComparison.Ordinal);
            }
            var allowed = access == MqttAclAccess.Publish ? MqttTopic.Matches(pattern, topicOrFilter) : MqttTopic.Covers(pattern, topicOrFilter);
            if (allowed) return true;
        }
        return false;
    }

    private static bool IsSafeSubstitution(string value) => value.Length > 0 && value.AsSpan().IndexOfAny('/', '+', '#') < 0;

    // ---- sessions ----

    internal (MqttSession Session, bool Present) AttachSession(MqttConnection connection, string clientId, bool cleanStart, uint expiryInterval, string? userName)
    {
        MqttConnection? previous = null;
        var publishNow = new List<MqttApplicationMessage>();
        MqttSession session;
        bool present;
        lock (_sessionsLock)
        {
            if (_sessions.TryGetValue(clientId, out var existing))
            {
                lock (existing.Gate)
                {
                    previous = existing.Connection;
                    existing.Connection = null;
                    existing.SetConnected(false);
                    existing.ReleaseWaiters();
                    if (existing.PendingWill is { } pendingWill)
                    {
                        // A new connection before the will delay elapsed cancels the will, unless it ends the session.
                        if (cleanStart) publishNow.Add(pendingWill);
                        existing.PendingWill = null;
                    }
                }
                if (previous?.TakeWill() is { } previousWill && (cleanStart || previous.WillDelayInterval == 0)) publishNow.Add(previousWill);
                if (cleanStart)
                {
                    EndSession(existing, "session_replaced");
                    existing = null;
                }
            }
            present = existing is not null;
            session = existing ?? new MqttSession(clientId, userName);
            lock (session.Gate)
            {
                session.Connection = connection;
                session.SetConnected(true);
                session.ExpiryInterval = expiryInterval;
                session.UserName = userName;
            }
            _sessions[clientId] = session;
        }
        SessionChanged(session, always: true);
        if (previous is not null)
        {
            Logger.LogInformation("MQTT session {ClientId} taken over by a new connection", clientId);
            _ = previous.CloseAsync(MqttReasonCode.SessionTakenOver, "Another connection uses this client identifier.");
        }
        foreach (var will in publishNow) PublishWill(will);
        return (session, present);
    }

    internal void DetachSession(MqttConnection connection, MqttSession session, bool discardWill)
    {
        var will = connection.TakeWill();
        if (discardWill) will = null;
        MqttApplicationMessage? publishNow = null;
        lock (_sessionsLock)
        {
            lock (session.Gate)
            {
                if (session.Connection != connection) return;
                session.Connection = null;
                session.SetConnected(false);
                session.ReleaseWaiters();
                session.DisconnectedAt = Time.GetTimestamp();
            }
            SessionChanged(session, always: true);
            if (session.ExpiryInterval == 0)
            {
                EndSession(session, "session_ended");
                if (_sessions.TryGetValue(session.ClientId, out var current) && current == session) _sessions.TryRemove(session.ClientId, out _);
                publishNow = will;
            }
            else if (will is not null)
            {
                var delay = Math.Min(connection.WillDelayInterval, session.ExpiryInterval);
                if (delay == 0)
                {
                    publishNow = will;
                }
                else
                {
                    lock (session.Gate)
                    {
                        session.PendingWill = will;
                        session.PendingWillDueAt = Time.GetTimestamp() + (long)(delay * (double)Time.TimestampFrequency);
                    }
                }
            }
        }
        if (publishNow is not null) PublishWill(publishNow);
    }

    private void EndSession(MqttSession session, string reason)
    {
        int discarded;
        lock (session.Gate)
        {
            session.Ended = true;
            session.ReleaseWaiters();
            foreach (var entry in session.Subscriptions.Values)
            {
                MqttTopic.TryParseShared(entry.Filter, out _, out var inner, out _);
                Subscriptions.Remove(inner, entry.ShareGroup, session);
            }
            session.Subscriptions.Clear();
            discarded = session.Pending.Count + session.Inflight.Count;
            session.Pending.Clear();
            session.Inflight.Clear();
            session.IncomingQoS2.Clear();
        }
        SessionChanged(session, always: true);
        if (discarded > 0) CountDrop(reason, session.ClientId, discarded);
    }

    private void PublishWill(MqttApplicationMessage will)
    {
        if (!Authorize(MqttAclAccess.Publish, will.PublisherClientId ?? "", will.PublisherUserName, will.Topic))
        {
            CountDrop("not_authorized", will.PublisherClientId, 1);
            return;
        }
        Route(new MqttApplicationMessage
        {
            Topic = will.Topic,
            Payload = will.Payload,
            QoS = will.QoS,
            Retain = will.Retain,
            Properties = will.Properties,
            ExpiresAt = ExpiryFrom(will.Properties?.MessageExpiryInterval),
            PublisherClientId = will.PublisherClientId,
            PublisherUserName = will.PublisherUserName,
        });
    }

    internal void Sweep()
    {
        if (Interlocked.Exchange(ref _sweeping, 1) == 1) return;
        try
        {
            var now = Time.GetTimestamp();
            var wills = new List<MqttApplicationMessage>();
            foreach (var session in _sessions.Values)
            {
                if (session.IsConnected) continue;
                lock (_sessionsLock)
                {
                    lock (session.Gate)
                    {
                        if (session.Connection is not null || session.Ended) continue;
                        if (session.PendingWill is { } will && now >= session.PendingWillDueAt)
                        {
                            wills.Add(will);
                            session.PendingWill = null;
                        }
                    }
                    if (session.ExpiryInterval != uint.MaxValue
                        && Time.GetElapsedTime(session.DisconnectedAt, now) >= TimeSpan.FromSeconds(session.ExpiryInterval))
                    {
                        lock (session.Gate)
                        {
                            if (session.PendingWill is { } will) wills.Add(will);
                            session.PendingWill = null;
                        }
                        EndSession(session, "session_expired");
                        _sessions.TryRemove(new KeyValuePair<string, MqttSession>(session.ClientId, session));
                    }
                }
            }
            foreach (var (topic, message) in _retained)
            {
                if (IsExpired(message) && _retained.TryRemove(new KeyValuePair<string, MqttApplicationMessage>(topic, message))) _persistence?.RetainedChanged(topic);
            }
            foreach (var will in wills) PublishWill(will);
        }
        catch (Exception e)
        {
            Logger.LogError(e, "MQTT broker sweep failed");
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    // ---- subscriptions and routing ----

    /// <summary>
    /// Adds or replaces a subscription; returns whether it is new for the session, or null when the session holds
    /// <see cref="MqttBrokerOptions.MaximumSubscriptionsPerSession"/> already. With <paramref name="retained"/>
    /// set, also returns the retained messages to send (per the Retain Handling option). Subscribing and taking the
    /// retained snapshot exclude retained publishes, so a concurrent retained message arrives once, not twice or never.
    /// </summary>
    internal bool? Subscribe(MqttSession session, string filter, string innerFilter, string? shareGroup, MqttSubscription options, uint? subscriptionId,
        Func<bool, bool> wantsRetained, out List<MqttApplicationMessage>? retained)
    {
        var entry = new MqttSubscriptionEntry(session, filter, options, subscriptionId, shareGroup);
        bool isNew;
        retained = null;
        _retainedGate.EnterWriteLock();
        try
        {
            lock (session.Gate)
            {
                if (session.Ended) return false;
                isNew = !session.Subscriptions.ContainsKey(filter);
                if (isNew && session.Subscriptions.Count >= Options.MaximumSubscriptionsPerSession) return null;
                session.Subscriptions[filter] = entry;
                Subscriptions.Add(innerFilter, entry);
            }
            SessionChanged(session);
            if (wantsRetained(isNew)) retained = [.. RetainedMatching(innerFilter)];
        }
        finally
        {
            _retainedGate.ExitWriteLock();
        }
        return isNew;
    }

    private readonly ReaderWriterLockSlim _retainedGate = new(LockRecursionPolicy.NoRecursion);

    internal bool Unsubscribe(MqttSession session, string filter)
    {
        lock (session.Gate)
        {
            if (!session.Subscriptions.Remove(filter, out var entry)) return false;
            MqttTopic.TryParseShared(filter, out _, out var inner, out _);
            Subscriptions.Remove(inner, entry.ShareGroup, session);
            SessionChanged(session);
            return true;
        }
    }

    /// <summary>Whether the client's session holds this subscription (lets callers wait for SUBACK side effects).</summary>
    public bool IsSubscribed(string clientId, string filter)
    {
        if (!_sessions.TryGetValue(clientId, out var session)) return false;
        lock (session.Gate) return session.Subscriptions.ContainsKey(filter);
    }

    internal IEnumerable<MqttApplicationMessage> RetainedMatching(string filter)
    {
        foreach (var (topic, message) in _retained)
        {
            if (MqttTopic.Matches(filter, topic) && !IsExpired(message)) yield return message;
        }
    }

    [ThreadStatic]
    private static List<MqttSubscriptionEntry>? t_matches;

    /// <summary>Routes a message to every matching session. Returns a task to wait on when a receiving queue is congested.</summary>
    internal Task? Route(MqttApplicationMessage message)
    {
        var matches = t_matches ??= [];
        matches.Clear();
        try
        {
            if (message.Retain)
            {
                _retainedGate.EnterReadLock();
                try
                {
                    StoreRetained(message);
                    Subscriptions.Match(message.Topic, matches);
                }
                finally
                {
                    _retainedGate.ExitReadLock();
                }
            }
            else
            {
                Subscriptions.Match(message.Topic, matches);
            }
            if (matches.Count == 0) return null;
            if (matches.Count == 1)
            {
                var only = matches[0];
                if (only.Options.NoLocal && only.Session.ClientId == message.PublisherClientId) return null;
                return Enqueue(only.Session, new MqttDelivery(message, Min(message.QoS, only.Options.QoS), only.Options.RetainAsPublished && message.Retain,
                    only.SubscriptionId is { } sid ? [sid] : null));
            }
            // Several subscriptions of one session match: one delivery at the highest QoS with every identifier (3.3.4).
            var perSession = new Dictionary<MqttSession, (MqttQualityOfService QoS, bool Retain, List<uint>? Ids)>();
            foreach (var entry in matches)
            {
                if (entry.Options.NoLocal && entry.Session.ClientId == message.PublisherClientId) continue;
                var qos = Min(message.QoS, entry.Options.QoS);
                var retain = entry.Options.RetainAsPublished && message.Retain;
                if (perSession.TryGetValue(entry.Session, out var agg))
                {
                    var ids = agg.Ids;
                    if (entry.SubscriptionId is { } sid) (ids ??= []).Add(sid);
                    perSession[entry.Session] = ((MqttQualityOfService)Math.Max((byte)agg.QoS, (byte)qos), agg.Retain || retain, ids);
                }
                else
                {
                    perSession[entry.Session] = (qos, retain, entry.SubscriptionId is { } sid ? [sid] : null);
                }
            }
            List<Task>? waits = null;
            foreach (var (session, d) in perSession)
            {
                if (Enqueue(session, new MqttDelivery(message, d.QoS, d.Retain, d.Ids)) is { } wait) (waits ??= []).Add(wait);
            }
            return waits is null ? null : waits.Count == 1 ? waits[0] : Task.WhenAll(waits);
        }
        finally
        {
            matches.Clear();
        }
    }

    private static MqttQualityOfService Min(MqttQualityOfService a, MqttQualityOfService b) => a < b ? a : b;

    private void StoreRetained(MqttApplicationMessage message)
    {
        _persistence?.RetainedChanged(message.Topic);
        if (message.Payload.IsEmpty)
        {
            _retained.TryRemove(message.Topic, out _);
            return;
        }
        if (_retained.Count >= Options.MaximumRetainedMessages && !_retained.ContainsKey(message.Topic))
        {
            CountDrop("retained_store_full", message.PublisherClientId, 1);
            return;
        }
        _retained[message.Topic] = message;
    }

    internal Task? Enqueue(MqttSession session, MqttDelivery delivery)
    {
        MqttConnection? connection;
        string? dropReason = null;
        Task? wait = null;
        lock (session.Gate)
        {
            connection = session.Connection;
            if (session.Ended) return null;
            if (connection is null && delivery.QoS == MqttQualityOfService.AtMostOnce)
            {
                dropReason = "offline_qos0";
            }
            else if (session.Pending.Count >= Options.MaximumQueuedMessagesPerSession)
            {
                dropReason = "queue_full";
                session.DropsSinceLog++;
            }
            else
            {
                session.Pending.Enqueue(delivery);
                if (connection is not null && session.Pending.Count >= Options.BackpressureQueueLength)
                {
                    var now = Time.GetTimestamp();
                    if (session.Drained is null)
                    {
                        var drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        session.Drained = drained;
                        session.CongestedSince = now;
                        // One timer per congestion episode (not per waiting publish) bounds every wait.
                        session.CongestionTimer = Time.CreateTimer(static state => ((TaskCompletionSource)state!).TrySetResult(), drained, Options.BackpressureMaxWait, Timeout.InfiniteTimeSpan);
                    }
                    if (Time.GetElapsedTime(session.CongestedSince, now) < Options.BackpressureMaxWait) wait = session.Drained.Task;
                }
            }
        }
        if (dropReason is null)
        {
            SessionChanged(session);
            connection?.SignalDelivery();
            return wait;
        }
        Interlocked.Increment(ref _dropped);
        Telemetry.MessagesDropped.Add(1, new KeyValuePair<string, object?>("reason", dropReason));
        if (dropReason == "queue_full" && (session.DropsSinceLog == 1 || session.DropsSinceLog % 1000 == 0))
        {
            Logger.LogWarning("MQTT queue of {ClientId} is full ({Limit} messages): dropped the newest message on {Topic} ({Dropped} dropped so far for this session)",
                session.ClientId, Options.MaximumQueuedMessagesPerSession, delivery.Message.Topic, session.DropsSinceLog);
        }
        return null;
    }

    internal void CountDrop(string reason, string? clientId, int count)
    {
        Interlocked.Add(ref _dropped, count);
        Telemetry.MessagesDropped.Add(count, new KeyValuePair<string, object?>("reason", reason));
        Logger.LogInformation("MQTT dropped {Count} message(s) for {ClientId}: {Reason}", count, clientId, reason);
    }
}
