using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using CloudEdge.Runtime.Activation;
using CloudEdge.Runtime.Diagnostics;
using CloudEdge.Runtime.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudEdge.Runtime.Streams;

/// <summary>
/// A stream provider over an <see cref="IStreamStore"/>. Publishing appends to the store (the producer's
/// trace context goes into each event) and wakes the stream's subscription agents; each subscription has
/// one agent that reads from its cursor and delivers in order, retrying a failing consumer and
/// dead-lettering after the configured attempts, and saves the cursor after each batch (at-least-once).
/// </summary>
internal sealed partial class StreamProvider : IStreamProvider, IDisposable
{
    private readonly IStreamStore store;
    private readonly IServiceProvider services;
    private readonly ConcurrentDictionary<Guid, SubscriptionAgent> agents = new();
    private readonly ConcurrentDictionary<StreamId, StreamSignal> signals = new();
    private readonly ConcurrentDictionary<(string GrainType, StreamId Stream), Lazy<Task>> implicitSubscriptions = new();
    private readonly Dictionary<string, List<ImplicitSubscriber>> implicitByNamespace = new(StringComparer.Ordinal);
    private readonly ConditionalWeakTable<ActivationData, ConcurrentDictionary<Guid, object>> attachedObservers = new();
    private readonly CancellationTokenSource stopping = new();
    private readonly SemaphoreSlim startGate = new(1, 1);
    private SiloRuntime? runtime;
    private GrainJson? json;
    private ITimer? retentionTimer;
    private bool started;
    private int disposed;

    public StreamProvider(string name, IStreamStore store, StreamProviderOptions options, IServiceProvider services)
    {
        options.Validate(name);
        Name = name;
        Options = options;
        this.store = store;
        this.services = services;
        Time = services.GetRequiredService<TimeProvider>();
        Logger = services.GetRequiredService<ILogger<StreamProvider>>();
        Instruments = services.GetRequiredService<StreamInstruments>();
        foreach (var registration in services.GetServices<GrainClassRegistration>().Select(r => r.GrainClass).Distinct())
        {
            foreach (var attribute in registration.GetCustomAttributes(typeof(ImplicitStreamSubscriptionAttribute), false).Cast<ImplicitStreamSubscriptionAttribute>())
            {
                var itemTypes = registration.GetInterfaces()
                    .Where(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IAsyncObserver<>))
                    .Select(i => i.GetGenericArguments()[0])
                    .ToArray();
                if (itemTypes.Length != 1)
                {
                    throw new InvalidOperationException(
                        $"Grain class {registration.FullName} has [ImplicitStreamSubscription(\"{attribute.Namespace}\")] and must implement IAsyncObserver<T> for exactly one T (it implements it for {itemTypes.Length}).");
                }

                if (!implicitByNamespace.TryGetValue(attribute.Namespace, out var list))
                {
                    implicitByNamespace[attribute.Namespace] = list = [];
                }

                list.Add(new ImplicitSubscriber(GrainClassInfo.GrainTypeName(registration), itemTypes[0]));
            }
        }
    }

    public string Name { get; }

    public bool IsRewindable => true;

    internal StreamProviderOptions Options { get; }

    internal IStreamStore Store => store;

    internal TimeProvider Time { get; }

    internal ILogger Logger { get; }

    internal StreamInstruments Instruments { get; }

    internal SiloRuntime Runtime => runtime ??= services.GetRequiredService<SiloRuntime>();

    internal GrainJson Json => json ??= services.GetRequiredService<GrainJson>();

    internal CancellationToken Stopping => stopping.Token;

    public IAsyncStream<T> GetStream<T>(StreamId streamId)
    {
        if (streamId.Namespace is null)
        {
            throw new ArgumentException("The stream id is empty.", nameof(streamId));
        }

        return new AsyncStream<T>(this, streamId);
    }

    public Task<IReadOnlyList<StreamDeadLetter>> GetDeadLettersAsync(StreamId? streamId = null, int limit = 100, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        return store.GetDeadLettersAsync(streamId, limit, cancellationToken);
    }

    /// <summary>Loads the stored subscriptions and starts delivering; arms retention.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await startGate.WaitAsync(cancellationToken);
        try
        {
            if (started)
            {
                return;
            }

            foreach (var record in await store.LoadSubscriptionsAsync(cancellationToken))
            {
                StartAgent(record, external: null);
            }

            if (Options.RetentionMaxAge is not null || Options.RetentionMaxEventsPerStream is not null)
            {
                retentionTimer = Time.CreateTimer(static s => _ = ((StreamProvider)s!).RunRetentionAsync(), this, Options.RetentionPeriod, Options.RetentionPeriod);
            }

            started = true;
        }
        finally
        {
            startGate.Release();
        }
    }

    /// <summary>Stops every agent (a delivery in flight is abandoned, and redelivered after a restart: at-least-once).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        retentionTimer?.Dispose();
        await stopping.CancelAsync();
        try
        {
            await Task.WhenAll(agents.Values.Select(a => a.Completion)).WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // The host's shutdown timeout won; agents end on their own.
        }
    }

    /// <summary>Applies the retention settings once.</summary>
    internal async Task<long> TrimAsync(CancellationToken cancellationToken)
    {
        DateTimeOffset? cutoff = Options.RetentionMaxAge is { } age ? Time.GetUtcNow() - age : null;
        return await store.TrimAsync(cutoff, Options.RetentionMaxEventsPerStream, cancellationToken);
    }

    private async Task RunRetentionAsync()
    {
        try
        {
            await TrimAsync(stopping.Token);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
        catch (Exception exception)
        {
            LogRetentionFailed(Logger, exception, Name);
        }
    }

    internal async Task<IReadOnlyList<StreamSequenceToken>> PublishAsync<T>(StreamId streamId, IReadOnlyList<T> items, CancellationToken cancellationToken)
    {
        if (items.Count == 0)
        {
            return [];
        }

        using var activity = RuntimeTelemetry.Source.StartActivity($"publish {streamId.Namespace}", ActivityKind.Producer);
        if (activity is not null)
        {
            SetTags(activity, streamId);
            activity.SetTag("messaging.operation.type", "send");
            activity.SetTag("messaging.batch.message_count", items.Count);
        }

        string? traceParent = null;
        string? traceState = null;
        if (Activity.Current is { IdFormat: ActivityIdFormat.W3C } current)
        {
            traceParent = current.Id;
            traceState = current.TraceStateString;
        }

        var now = Time.GetUtcNow();
        var events = new NewStreamEvent[items.Count];
        for (var i = 0; i < events.Length; i++)
        {
            events[i] = new NewStreamEvent(Guid.NewGuid(), now, traceParent, traceState, Json.Serialize(items[i]));
        }

        await EnsureImplicitSubscriptionsAsync(streamId, cancellationToken);
        var sequences = await store.AppendAsync(streamId, events, cancellationToken);
        Instruments.Published.Add(events.Length, Tag("cloudedge.stream.provider", Name), Tag("cloudedge.stream.namespace", streamId.Namespace));
        Signal(streamId).Pulse();
        var tokens = new StreamSequenceToken[sequences.Length];
        for (var i = 0; i < tokens.Length; i++)
        {
            tokens[i] = new StreamSequenceToken(sequences[i]);
        }

        return tokens;
    }

    internal async Task<StreamSubscriptionHandle<T>> SubscribeAsync<T>(StreamId streamId, IAsyncObserver<T> observer, StreamSequenceToken? from, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(observer);
        // Read before the first await: a grain's turn is the one subscribing.
        var activation = ActivationData.Running;
        var next = from?.SequenceNumber ?? await store.GetLastSequenceAsync(streamId, cancellationToken) + 1;
        var record = new SubscriptionRecord(Guid.NewGuid(), streamId, activation?.GrainId, ItemTypeName(typeof(T)), Implicit: false, next);
        if (activation is null)
        {
            StartAgent(record, observer);
        }
        else
        {
            Attach(activation, record.Id, observer);
            await store.AddSubscriptionAsync(record, cancellationToken);
            StartAgent(record, external: null);
        }

        return new SubscriptionHandle<T>(this, record.Id, streamId);
    }

    internal Task<StreamSubscriptionHandle<T>> ResumeAsync<T>(Guid subscriptionId, StreamId streamId, IAsyncObserver<T> observer, StreamSequenceToken? from)
    {
        ArgumentNullException.ThrowIfNull(observer);
        var activation = ActivationData.Running;
        if (!agents.TryGetValue(subscriptionId, out var agent))
        {
            throw new InvalidOperationException($"Subscription {subscriptionId} to stream {streamId} in provider '{Name}' does not exist (it was unsubscribed).");
        }

        if (agent is not SubscriptionAgent<T> typed)
        {
            throw new InvalidOperationException($"Subscription {subscriptionId} to stream {streamId} carries {agent.Record.ItemType}, not {typeof(T).FullName}.");
        }

        if (activation is not null && agent.Record.Grain == activation.GrainId)
        {
            Attach(activation, subscriptionId, observer);
        }
        else if (agent.Record.Grain is null)
        {
            typed.External = observer;
        }
        else
        {
            throw new InvalidOperationException($"Subscription {subscriptionId} belongs to grain {agent.Record.Grain}; only that grain can resume it.");
        }

        if (from is not null)
        {
            agent.Rewind(from.SequenceNumber);
        }

        return Task.FromResult<StreamSubscriptionHandle<T>>(new SubscriptionHandle<T>(this, subscriptionId, streamId));
    }

    internal async Task UnsubscribeAsync(Guid subscriptionId, CancellationToken cancellationToken)
    {
        if (agents.TryGetValue(subscriptionId, out var agent) && agent.Record.Implicit)
        {
            throw new InvalidOperationException($"Subscription {subscriptionId} is implicit ([ImplicitStreamSubscription]) and cannot be removed.");
        }

        if (agents.TryRemove(subscriptionId, out agent))
        {
            // Not awaited: the agent may be waiting on a delivery queued behind the turn that unsubscribes.
            agent.Stop();
            if (agent.Record.Grain is not null)
            {
                await store.RemoveSubscriptionAsync(subscriptionId, cancellationToken);
            }
        }
    }

    internal IReadOnlyList<StreamSubscriptionHandle<T>> GetHandles<T>(StreamId streamId)
    {
        var grain = ActivationData.Running?.GrainId;
        var itemType = ItemTypeName(typeof(T));
        return [.. agents.Values
            .Where(a => a.Record.StreamId == streamId && a.Record.ItemType == itemType && (grain is null || a.Record.Grain == grain))
            .Select(a => new SubscriptionHandle<T>(this, a.Record.Id, streamId))];
    }

    /// <summary>Runs in the grain's turn: its attached observer, or the grain itself.</summary>
    internal Task InvokeGrainObserver<T>(ActivationData activation, SubscriptionRecord record, StreamEvent<T> streamEvent, CancellationToken cancellationToken)
    {
        if (attachedObservers.TryGetValue(activation, out var observers) && observers.TryGetValue(record.Id, out var attached) && attached is IAsyncObserver<T> observer)
        {
            return observer.OnNextAsync(streamEvent, cancellationToken);
        }

        if (activation.GrainInstance is IAsyncObserver<T> self)
        {
            return self.OnNextAsync(streamEvent, cancellationToken);
        }

        throw new InvalidOperationException(
            $"Grain {activation.GrainId} has no observer for subscription {record.Id} to stream {record.StreamId}: resume the handle in OnActivateAsync " +
            $"(stream.GetAllSubscriptionHandles, handle.ResumeAsync) or implement IAsyncObserver<{typeof(T).Name}>.");
    }

    internal StreamSignal Signal(StreamId streamId) => signals.GetOrAdd(streamId, static _ => new StreamSignal());

    internal static void SetTags(Activity activity, StreamId streamId)
    {
        activity.SetTag("messaging.system", "cloudedge");
        activity.SetTag("messaging.destination.name", streamId.ToString());
    }

    internal static KeyValuePair<string, object?> Tag(string key, object? value) => new(key, value);

    private void Attach(ActivationData activation, Guid subscriptionId, object observer) =>
        attachedObservers.GetValue(activation, static _ => new ConcurrentDictionary<Guid, object>())[subscriptionId] = observer;

    private async Task EnsureImplicitSubscriptionsAsync(StreamId streamId, CancellationToken cancellationToken)
    {
        if (!implicitByNamespace.TryGetValue(streamId.Namespace, out var subscribers))
        {
            return;
        }

        foreach (var subscriber in subscribers)
        {
            var key = (subscriber.GrainType, streamId);
            var creation = implicitSubscriptions.GetOrAdd(key, k => new Lazy<Task>(() => CreateImplicitSubscriptionAsync(subscriber, k.Stream)));
            try
            {
                await creation.Value.WaitAsync(cancellationToken);
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                implicitSubscriptions.TryRemove(new KeyValuePair<(string, StreamId), Lazy<Task>>(key, creation));
                throw;
            }
        }
    }

    private async Task CreateImplicitSubscriptionAsync(ImplicitSubscriber subscriber, StreamId streamId)
    {
        // One id per (grain type, stream): after a restart the stored subscription, with its cursor, is found again.
        var id = new Guid(MD5.HashData(Encoding.UTF8.GetBytes($"implicit\n{Name}\n{subscriber.GrainType}\n{streamId}")));
        var next = await store.GetLastSequenceAsync(streamId, CancellationToken.None) + 1;
        var record = await store.AddSubscriptionAsync(
            new SubscriptionRecord(id, streamId, GrainId.Create(subscriber.GrainType, streamId.Key), ItemTypeName(subscriber.ItemType), Implicit: true, next),
            CancellationToken.None);
        StartAgent(record, external: null);
    }

    private void StartAgent(SubscriptionRecord record, object? external)
    {
        if (agents.ContainsKey(record.Id))
        {
            return;
        }

        var itemType = Type.GetType(record.ItemType, throwOnError: false);
        if (itemType is null)
        {
            LogUnknownItemType(Logger, record.Id, record.StreamId.ToString(), record.ItemType);
            return;
        }

        var agent = (SubscriptionAgent)Activator.CreateInstance(typeof(SubscriptionAgent<>).MakeGenericType(itemType), this, record, external)!;
        if (agents.TryAdd(record.Id, agent))
        {
            agent.Start();
        }
    }

    private static string ItemTypeName(Type type) =>
        type.AssemblyQualifiedName ?? throw new ArgumentException($"Stream item type {type} has no assembly-qualified name.");

    public void Dispose()
    {
        // Registered under two service types, so the container disposes it twice.
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        retentionTimer?.Dispose();
        stopping.Cancel();
        stopping.Dispose();
        store.Dispose();
        startGate.Dispose();
    }

    [LoggerMessage(1, LogLevel.Warning, "Stream retention of provider {Provider} failed")]
    private static partial void LogRetentionFailed(ILogger logger, Exception exception, string provider);

    [LoggerMessage(2, LogLevel.Error, "Subscription {SubscriptionId} to stream {StreamId} names item type {ItemType}, which is not loaded; it is not delivered")]
    private static partial void LogUnknownItemType(ILogger logger, Guid subscriptionId, string streamId, string itemType);

    private sealed record ImplicitSubscriber(string GrainType, Type ItemType);
}

/// <summary>Wakes a stream's agents when events are appended.</summary>
internal sealed class StreamSignal
{
    private TaskCompletionSource pulse = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Next => Volatile.Read(ref pulse).Task;

    public void Pulse() => Interlocked.Exchange(ref pulse, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
}

internal sealed class AsyncStream<T>(StreamProvider provider, StreamId streamId) : IAsyncStream<T>
{
    public StreamId StreamId { get; } = streamId;

    public string ProviderName => provider.Name;

    public async Task<StreamSequenceToken> OnNextAsync(T item, CancellationToken cancellationToken = default) =>
        (await provider.PublishAsync(StreamId, [item], cancellationToken))[0];

    public Task<IReadOnlyList<StreamSequenceToken>> OnNextBatchAsync(IEnumerable<T> items, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(items);
        return provider.PublishAsync(StreamId, items as IReadOnlyList<T> ?? [.. items], cancellationToken);
    }

    public Task<StreamSubscriptionHandle<T>> SubscribeAsync(IAsyncObserver<T> observer, StreamSequenceToken? from = null, CancellationToken cancellationToken = default) =>
        provider.SubscribeAsync(StreamId, observer, from, cancellationToken);

    public Task<IReadOnlyList<StreamSubscriptionHandle<T>>> GetAllSubscriptionHandles(CancellationToken cancellationToken = default) =>
        Task.FromResult(provider.GetHandles<T>(StreamId));
}

internal sealed class SubscriptionHandle<T>(StreamProvider provider, Guid handleId, StreamId streamId) : StreamSubscriptionHandle<T>
{
    public override Guid HandleId { get; } = handleId;

    public override StreamId StreamId { get; } = streamId;

    public override string ProviderName => provider.Name;

    public override Task UnsubscribeAsync(CancellationToken cancellationToken = default) => provider.UnsubscribeAsync(HandleId, cancellationToken);

    public override Task<StreamSubscriptionHandle<T>> ResumeAsync(IAsyncObserver<T> observer, StreamSequenceToken? from = null, CancellationToken cancellationToken = default) =>
        provider.ResumeAsync(HandleId, StreamId, observer, from);
}
