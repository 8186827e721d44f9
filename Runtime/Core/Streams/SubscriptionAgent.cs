using System.Diagnostics;
using CloudEdge.Runtime.Diagnostics;
using Microsoft.Extensions.Logging;

namespace CloudEdge.Runtime.Streams;

/// <summary>Delivers one subscription's events in order, from its cursor. One agent per subscription.</summary>
internal abstract class SubscriptionAgent(StreamProvider provider, SubscriptionRecord record)
{
    /// <summary>How often an idle agent looks for appends that were not signalled (another process wrote them).</summary>
    private static readonly TimeSpan IdlePoll = TimeSpan.FromSeconds(5);

    private readonly CancellationTokenSource cancellation = CancellationTokenSource.CreateLinkedTokenSource(provider.Stopping);
    private long rewindTo;

    public SubscriptionRecord Record { get; } = record;

    public Task Completion { get; private set; } = Task.CompletedTask;

    protected StreamProvider Provider { get; } = provider;

    protected CancellationToken Cancellation => cancellation.Token;

    public void Start() => Completion = Task.Run(RunAsync);

    public void Stop() => cancellation.Cancel();

    /// <summary>Moves the cursor to <paramref name="sequence"/> before the next delivery.</summary>
    public void Rewind(long sequence)
    {
        Interlocked.Exchange(ref rewindTo, sequence);
        Provider.Signal(Record.StreamId).Pulse();
    }

    protected bool RewindPending => Interlocked.Read(ref rewindTo) != 0;

    protected abstract Task DeliverWithRetriesAsync(StoredStreamEvent stored, CancellationToken cancellationToken);

    private async Task RunAsync()
    {
        var token = cancellation.Token;
        var store = Provider.Store;
        var durable = Record.Grain is not null;
        var next = Record.NextSequence;
        var saved = next;
        while (!token.IsCancellationRequested)
        {
            try
            {
                if (Interlocked.Exchange(ref rewindTo, 0) is var rewind and > 0)
                {
                    next = rewind;
                }

                // Taken before reading, so an append between the read and the wait is not missed.
                var appended = Provider.Signal(Record.StreamId).Next;
                var batch = await store.ReadAsync(Record.StreamId, next, Provider.Options.DeliveryBatchSize, token);
                if (batch.Count == 0)
                {
                    if (durable && saved != next)
                    {
                        await store.SaveCursorAsync(Record.Id, next, token);
                        saved = next;
                    }

                    try
                    {
                        await appended.WaitAsync(IdlePoll, token);
                    }
                    catch (TimeoutException)
                    {
                        // Poll now and then: appends by another process are not signalled.
                    }

                    continue;
                }

                foreach (var stored in batch)
                {
                    if (RewindPending || token.IsCancellationRequested)
                    {
                        break;
                    }

                    await DeliverWithRetriesAsync(stored, token);
                    next = stored.Sequence + 1;
                }

                if (durable && !token.IsCancellationRequested)
                {
                    await store.SaveCursorAsync(Record.Id, next, token);
                    saved = next;
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                StreamProviderLog.AgentFailed(Provider.Logger, exception, Record.Id, Record.StreamId.ToString());
                try
                {
                    await Task.Delay(Provider.Options.MaxRetryDelay, Provider.Time, token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }
}

internal sealed class SubscriptionAgent<T>(StreamProvider provider, SubscriptionRecord record, object? external) : SubscriptionAgent(provider, record)
{
    /// <summary>The observer of a subscription made outside a grain; null for a grain's subscription.</summary>
    public IAsyncObserver<T>? External { get; set; } = (IAsyncObserver<T>?)external;

    protected override async Task DeliverWithRetriesAsync(StoredStreamEvent stored, CancellationToken cancellationToken)
    {
        var options = Provider.Options;
        var tags = new TagList
        {
            { "cloudedge.stream.provider", Provider.Name },
            { "cloudedge.stream.namespace", Record.StreamId.Namespace },
        };
        ActivityContext parent = default;
        if (stored.TraceParent is not null)
        {
            ActivityContext.TryParse(stored.TraceParent, stored.TraceState, isRemote: true, out parent);
        }

        string error;
        var attempt = 0;
        while (true)
        {
            attempt++;
            using var activity = RuntimeTelemetry.Source.StartActivity($"deliver {Record.StreamId.Namespace}", ActivityKind.Consumer, parent);
            if (activity is not null)
            {
                StreamProvider.SetTags(activity, Record.StreamId);
                activity.SetTag("messaging.operation.type", "process");
                activity.SetTag("messaging.message.id", stored.EventId.ToString("N"));
                activity.SetTag("cloudedge.stream.sequence", stored.Sequence);
                activity.SetTag("cloudedge.stream.subscription", Record.Id.ToString("N"));
                activity.SetTag("cloudedge.stream.attempt", attempt);
            }

            try
            {
                // Deserialized per attempt: a consumer that mutated the item and failed does not see its own changes on retry.
                var item = Provider.Json.Deserialize<T>(stored.Payload)!;
                var streamEvent = new StreamEvent<T>(Record.StreamId, stored.EventId, new StreamSequenceToken(stored.Sequence), stored.Timestamp, stored.TraceParent, stored.TraceState, item);
                await DeliverAsync(streamEvent, activity, cancellationToken);
                Provider.Instruments.Delivered.Add(1, tags);
                return;
            }
            catch (Exception exception) when (!cancellationToken.IsCancellationRequested)
            {
                activity?.SetStatus(ActivityStatusCode.Error, exception.Message);
                activity?.SetTag("exception.type", exception.GetType().FullName);
                error = $"{exception.GetType().FullName}: {exception.Message}";
                if (attempt >= options.MaxDeliveryAttempts)
                {
                    break;
                }

                Provider.Instruments.Retried.Add(1, tags);
                StreamProviderLog.DeliveryRetried(Provider.Logger, exception, stored.Sequence, Record.StreamId.ToString(), Record.Id, attempt);
            }

            var delay = TimeSpan.FromTicks(Math.Min(options.MaxRetryDelay.Ticks, options.RetryDelay.Ticks * (1L << Math.Min(attempt - 1, 20))));
            await Task.Delay(delay, Provider.Time, cancellationToken);
        }

        var subscriber = Record.Grain?.ToString() ?? "external";
        await Provider.Store.AddDeadLetterAsync(
            new StreamDeadLetter(Record.StreamId, stored.EventId, new StreamSequenceToken(stored.Sequence), Record.Id, subscriber, attempt, error, Provider.Time.GetUtcNow(), stored.Payload),
            cancellationToken);
        Provider.Instruments.DeadLettered.Add(1, tags);
        StreamProviderLog.DeadLettered(Provider.Logger, stored.Sequence, Record.StreamId.ToString(), subscriber, attempt, error);
    }

    private Task DeliverAsync(StreamEvent<T> streamEvent, Activity? activity, CancellationToken cancellationToken)
    {
        if (Record.Grain is not { } grain)
        {
            return External!.OnNextAsync(streamEvent, cancellationToken);
        }

        var request = new StreamDeliveryRequest(grain, activation => Provider.InvokeGrainObserver(activation, Record, streamEvent, cancellationToken), activity);
        Provider.Runtime.Send(request);
        return WaitForGrainAsync(request, grain, streamEvent.Token, cancellationToken);
    }

    private async Task WaitForGrainAsync(StreamDeliveryRequest request, GrainId grain, StreamSequenceToken token, CancellationToken cancellationToken)
    {
        await Task.WhenAny(request.Started, request.Completion).WaitAsync(cancellationToken);
        try
        {
            await request.Completion.WaitAsync(Provider.Options.DeliveryTimeout, Provider.Time, cancellationToken);
        }
        catch (TimeoutException)
        {
            // The turn may still finish; the retry queues behind it, so the grain still sees events in order.
            throw new TimeoutException($"Grain {grain} did not handle event {token} of stream {Record.StreamId} within {Provider.Options.DeliveryTimeout}.");
        }
    }
}

internal static partial class StreamProviderLog
{
    [LoggerMessage(10, LogLevel.Warning, "Delivery of subscription {SubscriptionId} to stream {StreamId} failed; retrying")]
    public static partial void AgentFailed(ILogger logger, Exception exception, Guid subscriptionId, string streamId);

    [LoggerMessage(11, LogLevel.Information, "Event {Sequence} of stream {StreamId} failed for subscription {SubscriptionId} (attempt {Attempt}); retrying")]
    public static partial void DeliveryRetried(ILogger logger, Exception exception, long sequence, string streamId, Guid subscriptionId, int attempt);

    [LoggerMessage(12, LogLevel.Error, "Event {Sequence} of stream {StreamId} dead-lettered for {Subscriber} after {Attempts} attempts: {Error}")]
    public static partial void DeadLettered(ILogger logger, long sequence, string streamId, string subscriber, int attempts, string error);
}
