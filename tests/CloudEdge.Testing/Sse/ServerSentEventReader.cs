using System.Globalization;
using System.Net.Http.Headers;
using System.Text;

namespace CloudEdge.Testing.Sse;

/// <summary>One Server-Sent Events message as a client sees it: its id, event name (default "message") and data lines joined by '\n'.</summary>
public sealed record ServerSentEvent(string? Id, string Event, string Data);

/// <summary>
/// Parses the Server-Sent Events framing (WHATWG HTML, "Server-sent events": id, event, data, retry,
/// comment lines, a blank line ending each message) from a response body, as a browser's EventSource
/// does. Tests and benchmarks read live streams with it instead of matching lines by hand.
/// </summary>
public sealed class ServerSentEventReader : IDisposable
{
    private readonly StreamReader reader;

    public ServerSentEventReader(Stream body) => reader = new StreamReader(body, Encoding.UTF8);

    /// <summary>The last <c>retry:</c> hint, in milliseconds (the CloudEdge Silo writes one first, once its subscription exists).</summary>
    public long? RetryMilliseconds { get; private set; }

    /// <summary>Comment lines seen so far (keepalives).</summary>
    public int Comments { get; private set; }

    /// <summary>Opens a live endpoint: GET with <c>Accept: text/event-stream</c> and an optional <c>Last-Event-ID</c>, answer headers read, body not.</summary>
    public static async Task<HttpResponseMessage> OpenAsync(HttpClient client, string path, string? lastEventId = null, CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        if (lastEventId is not null)
        {
            request.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);
        }

        return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    }

    /// <summary>The next message with data, or null when the stream ended. Frames without data (a retry hint, comments) are consumed on the way.</summary>
    public async Task<ServerSentEvent?> ReadAsync(CancellationToken cancellationToken = default)
    {
        while (await ReadFrameAsync(cancellationToken) is { } frame)
        {
            if (frame.Data is not null)
            {
                return new ServerSentEvent(frame.Id, frame.Event ?? "message", frame.Data);
            }
        }

        return null;
    }

    /// <summary>
    /// Reads one frame (up to a blank line) and reports whether it held data; false also when the stream ended.
    /// For waiting on a retry hint or a keepalive comment, which carry no message.
    /// </summary>
    public async Task<(bool Ended, ServerSentEvent? Message)> ReadFrameOrMessageAsync(CancellationToken cancellationToken = default)
    {
        var frame = await ReadFrameAsync(cancellationToken);
        return frame is null ? (true, null)
            : (false, frame.Value.Data is null ? null : new ServerSentEvent(frame.Value.Id, frame.Value.Event ?? "message", frame.Value.Data));
    }

    public void Dispose() => reader.Dispose();

    private async Task<(string? Id, string? Event, string? Data)?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        string? id = null, name = null;
        StringBuilder? data = null;
        var any = false;
        while (true)
        {
            var line = await reader.ReadLineAsync(cancellationToken);
            if (line is null)
            {
                return null;
            }

            if (line.Length == 0)
            {
                if (any)
                {
                    return (id, name, data?.ToString());
                }

                continue;
            }

            any = true;
            if (line[0] == ':')
            {
                Comments++;
                continue;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            var field = colon < 0 ? line : line[..colon];
            var value = colon < 0 ? string.Empty : line[(colon + 1)..];
            // The spec drops exactly one space after the colon.
            value = value.StartsWith(' ') ? value[1..] : value;
            switch (field)
            {
                case "id":
                    id = value;
                    break;
                case "event":
                    name = value;
                    break;
                case "data":
                    (data ??= new StringBuilder()).Append(data.Length > 0 ? "\n" : string.Empty).Append(value);
                    break;
                case "retry" when long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var retry):
                    RetryMilliseconds = retry;
                    break;
            }
        }
    }
}
