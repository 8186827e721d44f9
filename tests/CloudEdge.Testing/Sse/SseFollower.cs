using System.Collections.Concurrent;
using System.Text.Json.Nodes;

namespace CloudEdge.Testing.Sse;

/// <summary>One event of a live stream: its name and its JSON data.</summary>
public sealed record SseEvent(string Event, JsonObject Data);

/// <summary>
/// Follows one live endpoint in the background (the token as <c>?access_token=</c>, as a browser's EventSource
/// sends it) and keeps every event; opening waits for the retry hint, written once the subscription exists.
/// </summary>
public sealed class SseFollower : IAsyncDisposable
{
    private readonly HttpClient client;
    private readonly CancellationTokenSource stop = new();
    private readonly ConcurrentQueue<SseEvent> events = new();
    private readonly TaskCompletionSource subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task reading = Task.CompletedTask;

    private SseFollower(HttpClient client) => this.client = client;

    public static async Task<SseFollower> OpenAsync(string baseUrl, string path, string token)
    {
        var follower = new SseFollower(new HttpClient { BaseAddress = new Uri(baseUrl), Timeout = Timeout.InfiniteTimeSpan });
        var response = await ServerSentEventReader.OpenAsync(follower.client, $"{path}?access_token={Uri.EscapeDataString(token)}");
        if (!response.IsSuccessStatusCode)
        {
            // Only a refusal has a body that ends.
            var refusal = $"GET {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
            response.Dispose();
            follower.client.Dispose();
            throw new InvalidOperationException(refusal);
        }

        follower.reading = follower.ReadAsync(response);
        await follower.subscribed.Task.WaitAsync(Wait.Long);
        return follower;
    }

    /// <summary>The first event matching <paramref name="match"/>, waiting up to <paramref name="timeout"/> (default 2 minutes).</summary>
    public async Task<SseEvent> WaitForAsync(Func<SseEvent, bool> match, string what, TimeSpan? timeout = null)
    {
        SseEvent? found = null;
        await Wait.UntilAsync(() => reading.IsFaulted || (found = events.FirstOrDefault(match)) is not null, what, timeout ?? TimeSpan.FromMinutes(2));
        if (reading.IsFaulted)
        {
            await reading;
        }

        return found!;
    }

    public async ValueTask DisposeAsync()
    {
        await stop.CancelAsync();
        try
        {
            await reading;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or HttpRequestException)
        {
            // The stream ends with the test.
        }

        client.Dispose();
        stop.Dispose();
    }

    private async Task ReadAsync(HttpResponseMessage response)
    {
        using (response)
        {
            using var reader = new ServerSentEventReader(await response.Content.ReadAsStreamAsync(stop.Token));
            while (true)
            {
                var (ended, message) = await reader.ReadFrameOrMessageAsync(stop.Token);
                if (ended)
                {
                    return;
                }

                if (reader.RetryMilliseconds is not null)
                {
                    subscribed.TrySetResult();
                }

                if (message is not null && JsonNode.Parse(message.Data) is JsonObject json)
                {
                    events.Enqueue(new SseEvent(message.Event, json));
                }
            }
        }
    }
}
