using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CloudEdge.EdgeAgent.Tests;

/// <summary>
/// A small Kestrel endpoint implementing docs/uplink.md's semantics on loopback (the Silo's uplink route did not
/// exist yet): bearer token check, gateway scoping, gzip bodies, per (gateway, device) highest applied seq so a
/// repeat is a duplicate, rejection of unknown devices, and the OTA routes. Its state (the "grain storage")
/// lives in <see cref="SiloState"/>, which survives a restart of the endpoint.
/// </summary>
internal sealed class FakeSilo : IAsyncDisposable
{
    private readonly WebApplication _app;

    private readonly string _scheme;

    private FakeSilo(WebApplication app, int port, string scheme)
    {
        _app = app;
        Port = port;
        _scheme = scheme;
    }

    public int Port { get; }
    public string Url => $"{_scheme}://127.0.0.1:{Port}/";

    public static async Task<FakeSilo> StartAsync(SiloState state, int port = 0, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l =>
        {
            if (certificate is not null) l.UseHttps(certificate);
        }));
        var app = builder.Build();
        app.MapPost("/api/v1/gateways/{gatewayId}/uplink", async (string gatewayId, HttpContext context) => await state.UplinkAsync(gatewayId, context));
        app.MapGet("/api/v1/gateways/{gatewayId}/desired", (string gatewayId, HttpContext context) => state.Desired(gatewayId, context));
        app.MapPut("/api/v1/gateways/{gatewayId}/reported", async (string gatewayId, HttpContext context) => await state.ReportedAsync(gatewayId, context));
        app.MapGet("/api/v1/models/{name}/{version}", (string name, string version, HttpContext context) => state.Manifest(name, version, context));
        app.MapGet("/api/v1/models/blobs/{sha256}", (string sha256, HttpContext context) => state.Blob(sha256, context));
        await app.StartAsync();
        var bound = new Uri(app.Urls.First()).Port;
        return new FakeSilo(app, bound, certificate is null ? "http" : "https");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

internal sealed class SiloState
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, long> _highest = new(StringComparer.Ordinal);

    public string Token { get; init; } = "gateway-token";
    public string GatewayId { get; init; } = "gw-test";
    public HashSet<string> UnknownDevices { get; } = [];

    /// <summary>Every applied item id in apply order (exactly-once means no id twice).</summary>
    public List<string> Applied { get; } = [];
    public List<(string Id, JsonElement Item)> AppliedItems { get; } = [];
    public int Duplicates { get; private set; }

    /// <summary>A copy of the applied items, taken under the lock the endpoint writes under.</summary>
    public List<(string Id, JsonElement Item)> Snapshot()
    {
        lock (_gate) return [.. AppliedItems];
    }
    public ConcurrentQueue<(string? TraceParent, string? Encoding, string? Authorization)> Requests { get; } = new();

    /// <summary>Requests still to answer with 503 + Retry-After 0.</summary>
    public int FailNext;
    /// <summary>Requests still to apply and then answer by dropping the connection (the acknowledgement is lost).</summary>
    public int LoseAckNext;
    /// <summary>Batches with more items than this are refused with 413 (the Silo's batch limit).</summary>
    public int MaxItems { get; set; } = 1000;
    public List<int> BatchSizes { get; } = [];

    // OTA
    public ConcurrentDictionary<string, byte[]> Blobs { get; } = new();
    public ConcurrentDictionary<string, string> Manifests { get; } = new();
    public string? DesiredJson { get; set; }
    public int DesiredVersion { get; set; }
    public ConcurrentQueue<string> Reported { get; } = new();

    public async Task UplinkAsync(string gatewayId, HttpContext context)
    {
        Requests.Enqueue((context.Request.Headers["traceparent"].ToString(), context.Request.Headers.ContentEncoding.ToString(), context.Request.Headers.Authorization.ToString()));
        if (!Authorized(gatewayId, context)) return;
        if (Interlocked.Decrement(ref FailNext) >= 0)
        {
            context.Response.StatusCode = 503;
            context.Response.Headers.RetryAfter = "0";
            return;
        }
        Stream body = context.Request.Body;
        if (context.Request.Headers.ContentEncoding == "gzip") body = new GZipStream(body, CompressionMode.Decompress);
        using var document = await JsonDocument.ParseAsync(body);
        var results = new List<object>();
        var count = document.RootElement.GetProperty("items").GetArrayLength();
        lock (_gate) BatchSizes.Add(count);
        if (count > MaxItems)
        {
            context.Response.StatusCode = 413;
            return;
        }
        lock (_gate)
        {
            foreach (var item in document.RootElement.GetProperty("items").EnumerateArray())
            {
                var id = item.GetProperty("id").GetString()!;
                var seq = item.GetProperty("seq").GetInt64();
                var device = item.TryGetProperty("deviceId", out var d) ? d.GetString()! : "#drops";
                if (UnknownDevices.Contains(device))
                {
                    results.Add(new { id, status = "rejected", code = "unknown_device" });
                    continue;
                }
                if (_highest.TryGetValue(device, out var highest) && seq <= highest)
                {
                    Duplicates++;
                    results.Add(new { id, status = "duplicate" });
                    continue;
                }
                _highest[device] = seq;
                Applied.Add(id);
                AppliedItems.Add((id, item.Clone()));
                results.Add(new { id, status = "applied" });
            }
        }
        if (Interlocked.Decrement(ref LoseAckNext) >= 0)
        {
            context.Abort();
            return;
        }
        await context.Response.WriteAsJsonAsync(new { results });
    }

    public IResult Desired(string gatewayId, HttpContext context)
    {
        if (!Authorized(gatewayId, context)) return Results.Empty;
        var etag = $"\"{DesiredVersion}\"";
        if (DesiredJson is null) return Results.NotFound();
        if (context.Request.Headers.IfNoneMatch == etag) return Results.StatusCode(304);
        context.Response.Headers.ETag = etag;
        return Results.Text(DesiredJson, "application/json");
    }

    public async Task ReportedAsync(string gatewayId, HttpContext context)
    {
        if (!Authorized(gatewayId, context)) return;
        using var reader = new StreamReader(context.Request.Body);
        Reported.Enqueue(await reader.ReadToEndAsync());
        context.Response.StatusCode = 204;
    }

    public IResult Manifest(string name, string version, HttpContext context) =>
        Manifests.TryGetValue($"{name}/{version}", out var json) ? Results.Text(json, "application/json") : Results.NotFound();

    public IResult Blob(string sha256, HttpContext context) =>
        Blobs.TryGetValue(sha256, out var bytes) ? Results.Bytes(bytes, "application/octet-stream") : Results.NotFound();

    private bool Authorized(string gatewayId, HttpContext context)
    {
        if (context.Request.Headers.Authorization != $"Bearer {Token}")
        {
            context.Response.StatusCode = 401;
            return false;
        }
        if (gatewayId != GatewayId)
        {
            context.Response.StatusCode = 403;
            return false;
        }
        return true;
    }
}
