using System.Net;
using System.Text.Json.Nodes;
using CloudEdge.Testing.Sse;

namespace CloudEdge.Silo.Tests;

/// <summary>One Server-Sent Events message as a client sees it.</summary>
internal sealed record SseMessage(string? Id, string Event, JsonNode Data)
{
    public long Seq => long.Parse(Id!, System.Globalization.CultureInfo.InvariantCulture);

    public string? Str(string name) => (string?)Data[name];
}

/// <summary>
/// A Server-Sent Events client of one live endpoint, over HttpClient and the shared framing parser
/// (<see cref="ServerSentEventReader"/>): data parsed as JSON, with xunit assertions on the way.
/// </summary>
internal sealed class LiveSse : IAsyncDisposable
{
    private readonly HttpResponseMessage response;
    private readonly ServerSentEventReader reader;

    private LiveSse(HttpResponseMessage response, ServerSentEventReader reader)
    {
        this.response = response;
        this.reader = reader;
    }

    public long? RetryMilliseconds => reader.RetryMilliseconds;

    public int Comments => reader.Comments;

    /// <summary>
    /// Connects and waits for the first frame (the retry hint), which the silo writes once its
    /// subscription exists: events published after this returns reach the client.
    /// </summary>
    public static async Task<LiveSse> ConnectAsync(HttpClient client, string path, string? lastEventId = null)
    {
        var response = await OpenAsync(client, path, lastEventId);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            Assert.Fail($"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var sse = new LiveSse(response, new ServerSentEventReader(await response.Content.ReadAsStreamAsync()));
        using var timeout = new CancellationTokenSource(Wait.Long);
        while (sse.RetryMilliseconds is null)
        {
            Assert.False((await sse.reader.ReadFrameOrMessageAsync(timeout.Token)).Ended, "The stream ended before its retry hint.");
        }

        return sse;
    }

    /// <summary>The raw answer, for refusals (the caller disposes it).</summary>
    public static Task<HttpResponseMessage> OpenAsync(HttpClient client, string path, string? lastEventId = null) =>
        ServerSentEventReader.OpenAsync(client, path, lastEventId);

    /// <summary>The next message, or null when the server ended the stream.</summary>
    public async Task<SseMessage?> NextAsync(TimeSpan? timeout = null)
    {
        using var cancel = new CancellationTokenSource(timeout ?? Wait.Long);
        return await reader.ReadAsync(cancel.Token) is { } message
            ? new SseMessage(message.Id, message.Event, JsonNode.Parse(message.Data)!)
            : null;
    }

    /// <summary>The next <paramref name="count"/> messages that match (others are skipped: fleet streams carry other tests' events).</summary>
    public async Task<List<SseMessage>> TakeAsync(int count, Func<SseMessage, bool>? match = null)
    {
        var taken = new List<SseMessage>();
        while (taken.Count < count)
        {
            var message = await NextAsync() ?? throw new InvalidOperationException($"The stream ended after {taken.Count} of {count} messages.");
            if (match?.Invoke(message) ?? true)
            {
                taken.Add(message);
            }
        }

        return taken;
    }

    /// <summary>Reads (and drops) frames until a comment line arrives: the keepalive of an idle stream.</summary>
    public async Task WaitForCommentAsync()
    {
        using var cancel = new CancellationTokenSource(Wait.Long);
        var before = Comments;
        while (Comments == before)
        {
            Assert.False((await reader.ReadFrameOrMessageAsync(cancel.Token)).Ended, "The stream ended before a keepalive.");
        }
    }

    /// <summary>Reads until the end of the stream (or a reset), returning the messages read on the way.</summary>
    public async Task<List<SseMessage>> ReadToEndAsync()
    {
        var messages = new List<SseMessage>();
        try
        {
            while (await NextAsync() is { } message)
            {
                messages.Add(message);
            }
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            // The server aborted the connection.
        }

        return messages;
    }

    public ValueTask DisposeAsync()
    {
        reader.Dispose();
        response.Dispose();
        return ValueTask.CompletedTask;
    }
}
