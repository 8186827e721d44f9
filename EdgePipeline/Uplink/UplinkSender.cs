using System.Buffers;
using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using CloudEdge.EdgePipeline.Outbox;
using CloudEdge.EdgePipeline.Tracing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace CloudEdge.EdgePipeline.Uplink;

/// <summary>What one uplink attempt achieved.</summary>
internal enum UplinkAttempt
{
    Idle,
    Sent,
    Failed,
}

/// <summary>
/// Sends the outbox to the Silo (docs/uplink.md): oldest items first, so each device's items go in seq order;
/// gzip JSON batches with the gateway's bearer token and a <c>traceparent</c> per request; retries with jittered
/// exponential backoff and a circuit breaker (Polly). Items leave the outbox only when the Silo acknowledged them
/// (applied or duplicate); rejected ones go to the dead-letter table. Summaries wait a short batching delay, alerts
/// go at once (docs/edge-agent.md, "Uplink"). A backlog drains at a bounded rate.
/// </summary>
public sealed class UplinkSender : BackgroundService
{
    /// <summary>An idle sender looks at the outbox this often even without a notification.</summary>
    private static readonly TimeSpan IdleRecheck = TimeSpan.FromSeconds(30);

    private readonly SiloHttp _http;
    private readonly OutboxStore _outbox;
    private readonly UplinkWakeup _wakeup;
    private readonly UplinkOptions _options;
    private readonly EdgeTelemetry _telemetry;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ResiliencePipeline<HttpResponseMessage> _resilience;
    private int _batchLimit;

    internal UplinkSender(SiloHttp http, OutboxStore outbox, UplinkWakeup wakeup, UplinkOptions options, EdgeTelemetry telemetry, TimeProvider time, ILogger<UplinkSender>? logger = null)
    {
        _http = http;
        _outbox = outbox;
        _wakeup = wakeup;
        _options = options;
        _telemetry = telemetry;
        _time = time;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _batchLimit = Math.Clamp(options.MaxBatchItems, 1, 1000);
        var transient = new PredicateBuilder<HttpResponseMessage>()
            .Handle<HttpRequestException>()
            .Handle<TimeoutRejectedException>()
            .HandleResult(r => r.StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || (int)r.StatusCode >= 500);
        _resilience = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                ShouldHandle = transient,
                MaxRetryAttempts = options.MaxRetryAttempts,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryBaseDelay,
                MaxDelay = options.RetryMaxDelay,
                // 429 and 503 may say when to come back.
                DelayGenerator = args => new ValueTask<TimeSpan?>(args.Outcome.Result?.Headers.RetryAfter is { } retryAfter
                    ? retryAfter.Delta ?? (retryAfter.Date is { } date ? date - time.GetUtcNow() : null)
                    : null),
                OnRetry = args =>
                {
                    _logger.LogWarning("Uplink attempt {Attempt} failed ({Outcome}); retrying in {Delay}", args.AttemptNumber + 1,
                        args.Outcome.Exception?.GetType().Name ?? ((int?)args.Outcome.Result?.StatusCode)?.ToString(), args.RetryDelay);
                    return ValueTask.CompletedTask;
                },
            })
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions<HttpResponseMessage>
            {
                ShouldHandle = transient,
                FailureRatio = 0.5,
                MinimumThroughput = 4,
                SamplingDuration = TimeSpan.FromSeconds(60),
                BreakDuration = options.BreakDuration < TimeSpan.FromSeconds(0.5) ? TimeSpan.FromSeconds(0.5) : options.BreakDuration, // Polly's minimum
                OnOpened = args =>
                {
                    _logger.LogWarning("Uplink circuit open for {Duration}: the Silo keeps failing", args.BreakDuration);
                    return ValueTask.CompletedTask;
                },
            })
            .AddTimeout(options.RequestTimeout)
            .Build();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var drain = new DrainBudget(_options.MaxItemsPerSecond, _batchLimit, _time);
        // When the current batching wait began (a timestamp of _time); null when no wait is on.
        long? batching = null;
        // The next request carries only the alerting devices' items (OutboxStore.ReadAlertingBatch).
        var urgent = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // Before the read: an alert the read misses ends the batching wait below.
                var alert = _wakeup.PrepareRead();
                var limit = _batchLimit;
                var (outcome, count) = await SendOnceAsync(urgent, stoppingToken).ConfigureAwait(false);
                if (outcome == UplinkAttempt.Sent)
                {
                    // The drain bound holds for urgent requests too: it protects the Silo after an outage whatever
                    // the items are. An alert during a drain waits for at most one batch's share of it.
                    var wait = drain.Spend(count);
                    if (wait > TimeSpan.Zero) await Task.Delay(wait, _time, stoppingToken).ConfigureAwait(false);
                }
                if (urgent && outcome is UplinkAttempt.Sent or UplinkAttempt.Idle)
                {
                    // A full urgent batch may not have reached its devices' alerts yet: the next one is urgent too.
                    // Otherwise the other devices' items keep the batching wait they were in (its end does not
                    // move), and another alert ends it again. Without a wait on (items that arrived during a
                    // request or a drain) they go in the next ordinary request, as they would have anyway.
                    urgent = (outcome == UplinkAttempt.Sent && count >= limit)
                             || (batching is { } began ? await WaitToBatchAsync(alert, began, stoppingToken).ConfigureAwait(false) : alert.IsCompleted);
                    continue;
                }
                urgent = false;
                switch (outcome)
                {
                    case UplinkAttempt.Idle:
                        batching = null;
                        if (await _wakeup.WaitForItemsAsync(IdleRecheck, _time, stoppingToken).ConfigureAwait(false))
                        {
                            batching = _time.GetTimestamp();
                            urgent = await WaitToBatchAsync(alert, batching.Value, stoppingToken).ConfigureAwait(false);
                        }
                        break;
                    case UplinkAttempt.Sent:
                        // No batching wait here: whatever arrived while the request was in flight goes in the next
                        // one, as fast as the drain budget allows; an alert among it makes that one urgent.
                        batching = null;
                        urgent = alert.IsCompleted;
                        break;
                    default:
                        // After an outage the backlog drains oldest first, alerts included, as before.
                        await Task.Delay(_options.OutageDelay, _time, stoppingToken).ConfigureAwait(false);
                        break;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                _logger.LogError(e, "Uplink loop failed; retrying");
                urgent = false;
                await Task.Delay(_options.OutageDelay, _time, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Items appeared in an idle outbox at <paramref name="began"/>: summaries wait until
    /// <see cref="UplinkOptions.BatchDelay"/> after it, so that a request carries more than one, but an alert ends
    /// the wait at once. True when an alert ended it: the next request is urgent and carries only the alerting
    /// devices' items (each device's order kept, see <see cref="OutboxStore.ReadAlertingBatch"/>).
    /// </summary>
    private async Task<bool> WaitToBatchAsync(Task alert, long began, CancellationToken cancellationToken)
    {
        var left = _options.BatchDelay - _time.GetElapsedTime(began);
        if (alert.IsCompleted) return true;
        if (left <= TimeSpan.Zero) return false;
        using var delayed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var delay = Task.Delay(left, _time, delayed.Token);
        await Task.WhenAny(delay, alert).ConfigureAwait(false);
        await delayed.CancelAsync().ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return alert.IsCompleted;
    }

    /// <summary>Sends the oldest batch once (an ordinary request, not an urgent one).</summary>
    internal Task<(UplinkAttempt Outcome, int Count)> SendOnceAsync(CancellationToken cancellationToken) => SendOnceAsync(false, cancellationToken);

    /// <summary>
    /// Sends the oldest batch once (with the retry/breaker pipeline) and applies the Silo's answer; when
    /// <paramref name="alertingOnly"/>, the oldest items of the devices that have an alert waiting.
    /// </summary>
    internal async Task<(UplinkAttempt Outcome, int Count)> SendOnceAsync(bool alertingOnly, CancellationToken cancellationToken)
    {
        var batch = alertingOnly
            ? _outbox.ReadAlertingBatch(_batchLimit, _options.MaxBatchBytes)
            : _outbox.ReadBatch(_batchLimit, _options.MaxBatchBytes);
        if (batch.Count == 0) return (UplinkAttempt.Idle, 0);

        var links = batch.Where(i => i.TraceParent is not null).Take(SiloLimits.MaxLinks)
            .Select(i => ActivityContext.TryParse(i.TraceParent, null, out var c) ? new ActivityLink(c) : default)
            .Where(l => l.Context != default).ToList();
        using var span = EdgeTelemetry.Source.StartActivity("edge.uplink.batch", ActivityKind.Client, new ActivityContext(), links: links);
        span?.SetTag("cloudedge.uplink.items", batch.Count);
        var traceParent = span?.Id ?? ReadingTraces.NewTraceParent();
        var body = Compress(Serialize(batch));
        HttpResponseMessage response;
        try
        {
            response = await _resilience.ExecuteAsync(async token =>
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, _http.GatewayPath("uplink"));
                request.Headers.Authorization = _http.Authorization();
                request.Headers.TryAddWithoutValidation("traceparent", traceParent);
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                request.Content.Headers.ContentEncoding.Add("gzip");
                return await _http.Client.SendAsync(request, token).ConfigureAwait(false);
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or BrokenCircuitException or TimeoutRejectedException or IOException
                                  || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            span?.SetStatus(ActivityStatusCode.Error, e.GetType().Name);
            _telemetry.UplinkRequests.Add(1, new KeyValuePair<string, object?>("outcome", "unreachable"));
            _logger.LogWarning("Uplink of {Count} items failed: {Error}; they stay in the outbox", batch.Count, e.Message);
            return (UplinkAttempt.Failed, 0);
        }

        using (response)
        {
            span?.SetTag("http.response.status_code", (int)response.StatusCode);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                var results = await ReadResultsAsync(response, cancellationToken).ConfigureAwait(false);
                Apply(batch, results);
                _telemetry.UplinkRequests.Add(1, new KeyValuePair<string, object?>("outcome", "ok"));
                _batchLimit = Math.Min(Math.Clamp(_options.MaxBatchItems, 1, 1000), _batchLimit * 2);
                return (UplinkAttempt.Sent, batch.Count);
            }
            span?.SetStatus(ActivityStatusCode.Error, ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture));
            _telemetry.UplinkRequests.Add(1, new KeyValuePair<string, object?>("outcome", ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            var problem = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (response.StatusCode is HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.BadRequest)
            {
                if (batch.Count > 1)
                {
                    // Find the offending item by halving; the others go through.
                    _batchLimit = Math.Max(1, batch.Count / 2);
                    _logger.LogWarning("Silo answered {Status} to {Count} items; retrying with batches of {Limit}", (int)response.StatusCode, batch.Count, _batchLimit);
                    return (UplinkAttempt.Sent, 0);
                }
                _outbox.DeadLetter([(batch[0], response.StatusCode == HttpStatusCode.BadRequest ? "malformed" : "too_large")], _http.GatewayId, _time.GetUtcNow());
                return (UplinkAttempt.Sent, 1);
            }
            _logger.LogError("Silo answered {Status} to the uplink: {Problem}", (int)response.StatusCode, problem);
            return (UplinkAttempt.Failed, 0);
        }
    }

    private void Apply(List<OutboxItem> batch, Dictionary<string, (string Status, string? Code)> results)
    {
        var acknowledged = new List<OutboxItem>(batch.Count);
        var rejected = new List<(OutboxItem, string)>();
        foreach (var item in batch)
        {
            if (!results.TryGetValue(item.ItemId(_http.GatewayId), out var result)) continue; // not answered: stays, sent again
            switch (result.Status)
            {
                case "applied":
                case "duplicate":
                    acknowledged.Add(item);
                    _telemetry.UplinkItems.Add(1, new KeyValuePair<string, object?>("status", result.Status));
                    break;
                case "rejected":
                    rejected.Add((item, result.Code ?? "rejected"));
                    _telemetry.UplinkItems.Add(1, new KeyValuePair<string, object?>("status", "rejected"));
                    break;
            }
        }
        _outbox.Acknowledge(acknowledged);
        _outbox.DeadLetter(rejected, _http.GatewayId, _time.GetUtcNow());
    }

    private byte[] Serialize(List<OutboxItem> batch)
    {
        var buffer = new ArrayBufferWriter<byte>(batch.Sum(i => i.Bytes) + 64);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("items");
            foreach (var item in batch)
            {
                writer.WriteStartObject();
                writer.WriteString("id", item.ItemId(_http.GatewayId));
                writer.WriteString("type", item.Type);
                if (item.DeviceId is not null) writer.WriteString("deviceId", item.DeviceId);
                writer.WriteNumber("seq", item.Seq);
                if (item.TraceParent is not null) writer.WriteString("traceparent", item.TraceParent);
                writer.WritePropertyName(item.Type);
                writer.WriteRawValue(item.Body, skipInputValidation: true);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] Compress(byte[] json)
    {
        using var output = new MemoryStream(json.Length / 4 + 64);
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) gzip.Write(json);
        return output.ToArray();
    }

    private static async Task<Dictionary<string, (string, string?)>> ReadResultsAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var results = new Dictionary<string, (string, string?)>(StringComparer.Ordinal);
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var document = await JsonDocument.ParseAsync(stream, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (!document.RootElement.TryGetProperty("results", out var array) || array.ValueKind != JsonValueKind.Array) return results;
        foreach (var result in array.EnumerateArray())
        {
            if (result.TryGetProperty("id", out var id) && id.GetString() is { } key && result.TryGetProperty("status", out var status))
            {
                results[key] = (status.GetString() ?? "", result.TryGetProperty("code", out var code) ? code.GetString() : null);
            }
        }
        return results;
    }
}
