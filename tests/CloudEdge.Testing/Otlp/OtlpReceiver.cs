using System.IO.Compression;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudEdge.Testing.Otlp;

/// <summary>
/// A private OTLP/HTTP collector for tests: Kestrel on a free 127.0.0.1 port, <c>POST /v1/traces</c> decoded
/// (<see cref="OtlpTraceDecoder"/>) and kept, <c>/v1/metrics</c> and <c>/v1/logs</c> accepted and counted.
/// Point a process at it with <c>OTEL_EXPORTER_OTLP_ENDPOINT={Endpoint}</c>.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly List<OtlpSpan> spans = [];
    private readonly Dictionary<string, int> requests = new(StringComparer.Ordinal);
    private readonly List<string> errors = [];
    private readonly Lock gate = new();

    private OtlpReceiver(WebApplication app) => this.app = app;

    /// <summary>The base URL with a trailing slash, e.g. <c>http://127.0.0.1:41234/</c>.</summary>
    public string Endpoint { get; private set; } = string.Empty;

    /// <summary>Every span received so far (a copy).</summary>
    public IReadOnlyList<OtlpSpan> Spans
    {
        get
        {
            lock (gate)
            {
                return [.. spans];
            }
        }
    }

    /// <summary>Requests that could not be decoded (a test failing on them sees why).</summary>
    public IReadOnlyList<string> Errors
    {
        get
        {
            lock (gate)
            {
                return [.. errors];
            }
        }
    }

    public static async Task<OtlpReceiver> StartAsync(CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new OtlpReceiver(app);
        app.MapPost("/v1/{signal}", receiver.ReceiveAsync);
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        receiver.Endpoint = address.TrimEnd('/') + "/";
        return receiver;
    }

    /// <summary>How many requests a signal ("traces", "metrics", "logs") received.</summary>
    public int RequestCount(string signal)
    {
        lock (gate)
        {
            return requests.GetValueOrDefault(signal);
        }
    }

    /// <summary>The spans of one trace (32 hex digits).</summary>
    public IReadOnlyList<OtlpSpan> Trace(string traceId)
    {
        lock (gate)
        {
            return [.. spans.Where(s => s.TraceId == traceId)];
        }
    }

    /// <summary>The span with this id (16 hex digits), if received.</summary>
    public OtlpSpan? Span(string spanId)
    {
        lock (gate)
        {
            return spans.FirstOrDefault(s => s.SpanId == spanId);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }

    private async Task<IResult> ReceiveAsync(string signal, HttpContext http)
    {
        if (signal is not ("traces" or "metrics" or "logs"))
        {
            return Results.NotFound();
        }

        using var body = new MemoryStream();
        var source = http.Request.Headers.ContentEncoding.ToString().Contains("gzip", StringComparison.OrdinalIgnoreCase)
            ? new GZipStream(http.Request.Body, CompressionMode.Decompress, leaveOpen: true)
            : http.Request.Body;
        await using (source)
        {
            await source.CopyToAsync(body, http.RequestAborted);
        }

        List<OtlpSpan>? decoded = null;
        string? error = null;
        if (signal == "traces")
        {
            if (!(http.Request.ContentType ?? string.Empty).StartsWith("application/x-protobuf", StringComparison.OrdinalIgnoreCase))
            {
                error = $"/v1/traces with content type '{http.Request.ContentType}' (only application/x-protobuf is decoded)";
            }
            else
            {
                try
                {
                    decoded = OtlpTraceDecoder.Decode(body.GetBuffer().AsSpan(0, (int)body.Length));
                }
                catch (InvalidDataException e)
                {
                    error = $"/v1/traces: {e.Message}";
                }
            }
        }

        lock (gate)
        {
            requests[signal] = requests.GetValueOrDefault(signal) + 1;
            if (decoded is not null)
            {
                spans.AddRange(decoded);
            }

            if (error is not null)
            {
                errors.Add(error);
            }
        }

        // An empty Export*ServiceResponse: everything accepted.
        return error is null ? Results.Bytes([], "application/x-protobuf") : Results.BadRequest();
    }
}
