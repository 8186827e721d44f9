using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using CloudEdge.Grains;
using CloudEdge.Runtime;
using CloudEdge.Silo.Hosting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace CloudEdge.Silo.Live;

/// <summary>
/// Streams one platform stream to one HTTP client as Server-Sent Events (docs/live.md). A stream
/// subscription feeds a bounded buffer; a loop writes the buffer to the response. The subscription
/// never waits on the socket for longer than <see cref="LiveOptions.SlowClientGrace"/>: a client whose
/// buffer stays full is disconnected (slow_consumer), and resumes from the log with Last-Event-ID.
/// </summary>
internal sealed partial class SseWriter(
    IOptions<LiveOptions> options,
    LiveMetrics metrics,
    IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<SseWriter> logger)
{
    private readonly SseFrameCache cache = new();

    private static readonly TimeSpan FinalWriteTimeout = TimeSpan.FromSeconds(1);

    /// <summary>Writes the stream from <paramref name="from"/> (null: from now) until the client leaves, is too slow, or the silo stops.</summary>
    public async Task RunAsync<T>(HttpContext http, IAsyncStream<T> stream, StreamSequenceToken? from, Func<T, string> eventName)
    {
        var settings = options.Value;
        var streamNamespace = stream.StreamId.Namespace;
        // Formatted once per connection: every frame's span, cache key and data name the stream.
        var streamName = stream.StreamId.ToString();
        var buffer = Channel.CreateBounded<StreamEvent<T>>(new BoundedChannelOptions(settings.ClientBufferEvents)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, lifetime.ApplicationStopping);
        var slow = 0;

        async Task Deliver(StreamEvent<T> streamEvent, CancellationToken delivery)
        {
            if (Volatile.Read(ref slow) != 0 || ending.IsCancellationRequested || buffer.Writer.TryWrite(streamEvent))
            {
                return;
            }

            using var grace = new CancellationTokenSource(settings.SlowClientGrace, time);
            using var waiting = CancellationTokenSource.CreateLinkedTokenSource(grace.Token, ending.Token, delivery);
            try
            {
                await buffer.Writer.WriteAsync(streamEvent, waiting.Token);
            }
            catch (OperationCanceledException) when (grace.IsCancellationRequested && !delivery.IsCancellationRequested && !ending.IsCancellationRequested)
            {
                Volatile.Write(ref slow, 1);
                buffer.Writer.TryComplete();
                await ending.CancelAsync();
            }
            catch (OperationCanceledException) when (ending.IsCancellationRequested)
            {
                // The connection is ending: the event stays in the log for the client's next connection.
            }
        }

        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache, no-transform";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        var handle = await stream.SubscribeAsync(new DelegateAsyncObserver<T>(Deliver), from, http.RequestAborted);
        metrics.Opened(streamNamespace);
        var reason = "failed";
        try
        {
            await WriteAsync(http, $"retry: {(long)settings.ReconnectDelay.TotalMilliseconds}\n\n", ending.Token);
            await PumpAsync(http, stream.StreamId, streamName, buffer.Reader, eventName, settings.KeepAliveInterval, ending.Token);
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
            await handle.UnsubscribeAsync(CancellationToken.None);
            reason = Volatile.Read(ref slow) != 0 ? "slow_consumer"
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

    private async Task PumpAsync<T>(HttpContext http, StreamId streamId, string streamName, ChannelReader<StreamEvent<T>> reader, Func<T, string> eventName, TimeSpan keepAlive, CancellationToken cancellationToken)
    {
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
            while (frames.Length < 64 * 1024 && reader.TryRead(out var streamEvent))
            {
                AppendFrame(frames, streamId, streamName, streamEvent, eventName(streamEvent.Item));
                count++;
            }

            if (count > 0)
            {
                await WriteAsync(http, frames.ToString(), cancellationToken);
                metrics.Sent(streamId.Namespace, count);
            }
        }
    }

    /// <summary>One event: <c>id</c> (its sequence number), <c>event</c>, and one line of JSON data, in a span of the event's trace.</summary>
    private void AppendFrame<T>(StringBuilder frames, StreamId streamId, string streamName, StreamEvent<T> streamEvent, string name)
    {
        var parent = ActivityContext.TryParse(streamEvent.TraceParent, streamEvent.TraceState, out var context) ? context : default;
        using var activity = SiloMetrics.ActivitySource.StartActivity($"sse send {streamId.Namespace}", ActivityKind.Producer, parent);
        if (activity is not null)
        {
            activity.SetTag("messaging.system", "cloudedge");
            activity.SetTag("messaging.destination.name", streamName);
            activity.SetTag("messaging.message.id", streamEvent.EventId.ToString());
            activity.SetTag("cloudedge.stream.sequence", streamEvent.Token.SequenceNumber);
        }

        var data = cache.GetOrAdd(
            streamName,
            streamEvent.Token.SequenceNumber,
            static state => state.Writer.Serialize(state.StreamName, state.Event),
            (Writer: this, StreamName: streamName, Event: streamEvent));
        frames.Append("id: ").Append(streamEvent.Token.SequenceNumber.ToString(CultureInfo.InvariantCulture)).Append('\n')
            .Append("event: ").Append(name).Append('\n')
            .Append("data: ").Append(data).Append("\n\n");
    }

    /// <summary>The event's one-line JSON data: the item's fields plus the envelope (seq, ids, times, trace context).</summary>
    private string Serialize<T>(string streamName, StreamEvent<T> streamEvent)
    {
        var data = JsonSerializer.SerializeToNode(streamEvent.Item, json.Value.SerializerOptions) as JsonObject ?? [];
        data["seq"] = streamEvent.Token.SequenceNumber;
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
