using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using CloudEdge.Testing.Sse;

namespace CloudEdge.Bench.Live;

/// <summary>One Server-Sent Event as it arrived: its fields and the <see cref="Stopwatch"/> timestamp when its frame was complete.</summary>
internal readonly record struct SseEvent(string? Id, string Type, string Data, long ArrivedAt);

/// <summary>
/// A browser-less SSE client: one GET on a live route with a bearer token, the response parsed as it arrives by the
/// shared <see cref="ServerSentEventReader"/> (docs/live.md: <c>retry:</c> first, then <c>id:</c>/<c>event:</c>/<c>data:</c> blocks).
/// <see cref="Ready"/> completes with the <c>retry:</c> line, which the Silo writes after it subscribed, so an
/// event published after that reaches this client.
/// </summary>
internal sealed class SseSubscriber : IAsyncDisposable
{
    private readonly TaskCompletionSource ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource stop = new();
    private readonly Action<SseSubscriber, SseEvent> onEvent;
    private readonly Task reading;

    private SseSubscriber(HttpClient http, string path, string token, Action<SseSubscriber, SseEvent> onEvent)
    {
        Path = path;
        this.onEvent = onEvent;
        reading = Task.Run(() => ReadAsync(http, token));
    }

    public string Path { get; }

    public Task Ready => ready.Task;

    /// <summary>Why reading ended early (a refused request, a dropped connection), or null while it runs.</summary>
    public string? Failure { get; private set; }

    public static SseSubscriber Open(HttpClient http, string path, string token, Action<SseSubscriber, SseEvent> onEvent) =>
        new(http, path, token, onEvent);

    /// <summary>An HttpClient for many long-lived streams: no overall timeout, no connection limit per server.</summary>
    public static HttpClient CreateClient(string baseUrl) =>
        new(new SocketsHttpHandler { MaxConnectionsPerServer = int.MaxValue, PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            BaseAddress = new Uri(baseUrl),
            Timeout = Timeout.InfiniteTimeSpan,
        };

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        await reading;
        stop.Dispose();
    }

    private async Task ReadAsync(HttpClient http, string token)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, Path);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stop.Token);
            if (!response.IsSuccessStatusCode)
            {
                Fail($"{Path} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(stop.Token)}");
                return;
            }

            using var reader = new ServerSentEventReader(await response.Content.ReadAsStreamAsync(stop.Token));
            while (true)
            {
                var (ended, message) = await reader.ReadFrameOrMessageAsync(stop.Token);
                if (ended)
                {
                    break;
                }

                if (reader.RetryMilliseconds is not null)
                {
                    ready.TrySetResult();
                }

                if (message is not null)
                {
                    onEvent(this, new SseEvent(message.Id, message.Event, message.Data, Stopwatch.GetTimestamp()));
                }
            }

            Fail($"{Path}: the server ended the stream");
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            Fail($"{Path}: {e.Message}");
        }
    }

    private void Fail(string why)
    {
        Failure = why;
        ready.TrySetException(new InvalidOperationException(why));
    }
}

/// <summary>What the benches read from an alert event's JSON data: the device and the reading (or item) it was raised for.</summary>
internal static class AlertEvents
{
    public static (string DeviceId, long ReadingSeq)? Key(string data)
    {
        using var json = JsonDocument.Parse(data);
        var root = json.RootElement;
        return root.TryGetProperty("deviceId", out var device) && device.ValueKind == JsonValueKind.String
            && root.TryGetProperty("alert", out var alert) && alert.ValueKind == JsonValueKind.Object
            && alert.TryGetProperty("readingSeq", out var seq) && seq.ValueKind == JsonValueKind.Number
            ? (device.GetString()!, seq.GetInt64())
            : null;
    }
}
