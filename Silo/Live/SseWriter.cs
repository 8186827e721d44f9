using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudEdge.Grains;
using CloudEdge.Silo.Hosting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace CloudEdge.Silo.Live;

/// <summary>
/// Streams one platform stream to one HTTP client as Server-Sent Events (docs/live.md). The silo's shared
/// feed of the stream offers events to the connection's bounded buffer; a loop writes the buffer to the
/// response. The feed never waits on a socket: a client whose buffer stays full for longer than
/// <see cref="LiveOptions.SlowClientGrace"/> is disconnected (slow_consumer), and resumes from the log with Last-Event-ID.
/// </summary>
internal sealed partial class SseWriter(
    IOptions<LiveOptions> options,
    LiveMetrics metrics,
    IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json,
    IHostApplicationLifetime lifetime,
    LiveFeeds feeds,
    TimeProvider time,
    ILogger<SseWriter> logger)
{
    private readonly SseFrameCache cache = new();

    private static readonly TimeSpan FinalWriteTimeout = TimeSpan.FromSeconds(1);

    private const int HistoryPage = 256;

    /// <summary>
    /// Writes the stream to the client until it leaves, is too slow, or the silo stops. The connection joins
    /// this silo's feed of the stream first and buffers; with <paramref name="history"/> it then sends what
    /// the log holds after <paramref name="after"/>, and goes on with live events, skipping those at or
    /// below the last sequence sent and filling any gap from the log: no gap and no duplicate.
    /// </summary>
    public async Task RunAsync<T>(HttpContext http, StreamId streamId, long? after, LiveHistory<T>? history, Func<T, string> eventName)
    {
        var settings = options.Value;
        var streamNamespace = streamId.GetNamespace() ?? string.Empty;
        // Formatted once per connection: every frame's span, cache key and data name the stream.
        var streamName = PlatformStreams.Format(streamId);
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, lifetime.ApplicationStopping);
        using var client = new LiveClient<T>(settings.ClientBufferEvents, settings.SlowClientGrace, time, ending);

        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache, no-transform";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        var membership = await feeds.JoinAsync<T>(streamId, client.Offer, http.RequestAborted);
        metrics.Opened(streamNamespace);
        var reason = "failed";
        try
        {
            await WriteAsync(http, $"retry: {(long)settings.ReconnectDelay.TotalMilliseconds}\n\n", ending.Token);
            var sent = after;
            if (after is { } start && history is not null)
            {
                sent = await SendHistoryAsync(http, streamNamespace, streamName, history, start, long.MaxValue, eventName, ending.Token);
            }

            await PumpAsync(http, streamNamespace, streamName, client, history, sent, eventName, settings.KeepAliveInterval, ending.Token);
        }
        catch (OperationCanceledException) when (ending.IsCancellationRequested)
        {
        }
        catch (IOException)
        {
            // The client went away mid-write.
        }
        finally
        {
            await membership.DisposeAsync();
            reason = client.IsSlow ? "slow_consumer"
                : lifetime.ApplicationStopping.IsCancellationRequested ? "server_stopping"
                : http.RequestAborted.IsCancellationRequested ? "client_closed"
                : reason;
            metrics.Closed(streamNamespace, reason);
        }

        if (reason == "slow_consumer")
        {
            LogSlowConsumer(logger, streamName, settings.ClientBufferEvents);
            // Best effort: a client that does not read will not get it, one that reads slowly will.
            using var last = new CancellationTokenSource(FinalWriteTimeout, time);
            try
            {
                var detail = JsonSerializer.Serialize(new
                {
                    code = "slow_consumer",
                    detail = $"The client did not keep up: {settings.ClientBufferEvents} events were waiting. Reconnect with Last-Event-ID to resume.",
                }, json.Value.SerializerOptions);
                await WriteAsync(http, $"event: error\ndata: {detail}\n\n", last.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or InvalidOperationException)
            {
            }

            http.Abort();
        }
    }

    /// <summary>Sends the logged events after <paramref name="after"/> up to <paramref name="upTo"/>; returns the last sequence sent.</summary>
    private async Task<long> SendHistoryAsync<T>(HttpContext http, string streamNamespace, string streamName, LiveHistory<T> history, long after, long upTo, Func<T, string> eventName, CancellationToken cancellationToken)
    {
        var frames = new StringBuilder();
        while (after < upTo)
        {
            var page = await history(after, (int)Math.Min(HistoryPage, upTo - after), cancellationToken);
            if (page.Count == 0)
            {
                break;
            }

            frames.Clear();
            var count = 0;
            foreach (var liveEvent in page)
            {
                if (liveEvent.Sequence <= after || liveEvent.Sequence > upTo)
                {
                    continue;
                }

                AppendFrame(frames, streamNamespace, streamName, liveEvent, eventName(liveEvent.Item));
                after = liveEvent.Sequence;
                count++;
            }

            if (count == 0)
            {
                break;
            }

            await WriteAsync(http, frames.ToString(), cancellationToken);
            metrics.Sent(streamNamespace, count);
        }

        return after;
    }

    private async Task PumpAsync<T>(HttpContext http, string streamNamespace, string streamName, LiveClient<T> client, LiveHistory<T>? history, long? sent, Func<T, string> eventName, TimeSpan keepAlive, CancellationToken cancellationToken)
    {
        var reader = client.Reader;
        Task<bool>? waiting = null;
        Task? idle = null;
        var frames = new StringBuilder();
        while (true)
        {
            waiting ??= reader.WaitToReadAsync(cancellationToken).AsTask();
            idle ??= Task.Delay(keepAlive, time, cancellationToken);
            if (await Task.WhenAny(waiting, idle) != waiting)
            {
                cancellationToken.ThrowIfCancellationRequested();
                idle = null;
                await WriteAsync(http, ": keepalive\n\n", cancellationToken);
                continue;
            }

            var more = await waiting;
            waiting = null;
            if (!more)
            {
                return;
            }

            frames.Clear();
            var count = 0;
            while (frames.Length < 64 * 1024 && reader.TryRead(out var liveEvent))
            {
                if (sent is { } last && liveEvent.Sequence <= last)
                {
                    // Sent already from the log (the feed was joined before the log was read).
                    continue;
                }

                if (sent is { } before && liveEvent.Sequence > before + 1 && history is not null)
                {
                    // Events the feed did not bring (the connection joined while they were in flight): from the log.
                    if (count > 0)
                    {
                        await WriteAsync(http, frames.ToString(), cancellationToken);
                        metrics.Sent(streamNamespace, count);
                        frames.Clear();
                        count = 0;
                    }

                    await SendHistoryAsync(http, streamNamespace, streamName, history, before, liveEvent.Sequence - 1, eventName, cancellationToken);
                }

                AppendFrame(frames, streamNamespace, streamName, liveEvent, eventName(liveEvent.Item));
                sent = liveEvent.Sequence;
                count++;
            }

            client.Refill();
            if (count > 0)
            {
                await WriteAsync(http, frames.ToString(), cancellationToken);
                metrics.Sent(streamNamespace, count);
            }
        }
    }

    /// <summary>One event: <c>id</c> (its sequence number), <c>event</c>, and one line of JSON data, in a span of the event's trace.</summary>
    private void AppendFrame<T>(StringBuilder frames, string streamNamespace, string streamName, LiveEvent<T> streamEvent, string name)
    {
        var parent = ActivityContext.TryParse(streamEvent.TraceParent, streamEvent.TraceState, out var context) ? context : default;
        using var activity = SiloMetrics.ActivitySource.StartActivity($"sse send {streamNamespace}", ActivityKind.Producer, parent);
        if (activity is not null)
        {
            activity.SetTag("messaging.system", "cloudedge");
            activity.SetTag("messaging.destination.name", streamName);
            activity.SetTag("messaging.message.id", streamEvent.EventId.ToString());
            activity.SetTag("cloudedge.stream.sequence", streamEvent.Sequence);
        }

        var data = cache.GetOrAdd(
            streamName,
            streamEvent.Sequence,
            static state => state.Writer.Serialize(state.StreamName, state.Event),
            (Writer: this, StreamName: streamName, Event: streamEvent));
        frames.Append("id: ").Append(streamEvent.Sequence.ToString(CultureInfo.InvariantCulture)).Append('\n')
            .Append("event: ").Append(name).Append('\n')
            .Append("data: ").Append(data).Append("\n\n");
    }

    /// <summary>The event's one-line JSON data: the item's fields plus the envelope (seq, ids, times, trace context).</summary>
    private string Serialize<T>(string streamName, LiveEvent<T> streamEvent)
    {
        var data = JsonSerializer.SerializeToNode(streamEvent.Item, json.Value.SerializerOptions) as JsonObject ?? [];
        data["seq"] = streamEvent.Sequence;
        data["eventId"] = streamEvent.EventId;
        data["stream"] = streamName;
        // Device events say when the thing happened; otherwise the event's publication time is the best answer.
        data["at"] ??= streamEvent.Timestamp;
        data["publishedAt"] = streamEvent.Timestamp;
        data["traceparent"] = streamEvent.TraceParent;
        data["traceId"] = TraceContext.TraceIdOf(streamEvent.TraceParent);
        return data.ToJsonString(json.Value.SerializerOptions);
    }

    private static async Task WriteAsync(HttpContext http, string text, CancellationToken cancellationToken)
    {
        await http.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(text), cancellationToken);
        await http.Response.Body.FlushAsync(cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Live client of {StreamId} disconnected: its buffer of {Capacity} events stayed full (slow_consumer)")]
    private static partial void LogSlowConsumer(ILogger logger, string streamId, int capacity);
}
