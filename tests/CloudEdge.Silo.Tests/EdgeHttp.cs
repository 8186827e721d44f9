using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudEdge.Silo.Auth;

namespace CloudEdge.Silo.Tests;

/// <summary>Builds uplink items as an edge agent sends them (docs/uplink.md) and posts them.</summary>
internal static class EdgeHttp
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static object Summary(string gatewayId, string deviceId, long seq, DateTimeOffset windowEnd, double mean, string? traceparent = null) => new
    {
        id = $"{gatewayId}:{deviceId}:{seq}",
        type = "summary",
        deviceId,
        seq,
        traceparent,
        summary = new
        {
            windowStart = windowEnd.AddMinutes(-1),
            windowEnd,
            kind = "temperature",
            count = 600,
            min = mean - 1,
            max = mean + 1,
            mean,
            stddev = 0.4,
            maxScore = 0.12,
            anomalyCount = 0,
            modelVersion = "v1",
            links = Array.Empty<string>(),
        },
    };

    public static object Alert(string gatewayId, string deviceId, long seq, DateTimeOffset at, string kind = "vibration", string? traceparent = null) => new
    {
        id = $"{gatewayId}:{deviceId}:{seq}",
        type = "alert",
        deviceId,
        seq,
        traceparent,
        alert = new { at, kind, value = 14.2, score = 0.97, threshold = 0.5, modelVersion = "v1", readingSeq = 1234 },
    };

    public static object Drops(string gatewayId, long seq, long readings) => new
    {
        id = $"{gatewayId}:drops:{seq}",
        type = "drops",
        seq,
        drops = new { summaries = 0, alerts = 0, readings, reason = "outbox_full" },
    };

    public static byte[] Body(params object[] items) => JsonSerializer.SerializeToUtf8Bytes(new { items }, Json);

    public static byte[] Gzip(byte[] body)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest))
        {
            gzip.Write(body);
        }

        return output.ToArray();
    }

    public static Task<(HttpResponseMessage Response, JsonNode? Body)> Uplink(this HttpClient client, string gatewayId, params object[] items) =>
        client.UplinkRaw(gatewayId, Body(items));

    public static async Task<(HttpResponseMessage Response, JsonNode? Body)> UplinkRaw(
        this HttpClient client, string gatewayId, byte[] body, string? encoding = null, string contentType = "application/json", string? traceparent = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/gateways/{gatewayId}/uplink")
        {
            Content = new ByteArrayContent(body),
        };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (encoding is not null)
        {
            request.Content.Headers.ContentEncoding.Add(encoding);
        }

        if (traceparent is not null)
        {
            request.Headers.TryAddWithoutValidation("traceparent", traceparent);
        }

        var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    /// <summary>The statuses of an uplink answer, in item order, as "status" or "status:code".</summary>
    public static string[] Statuses(JsonNode body) =>
        [.. body["results"]!.AsArray().Select(r => (string)r!["status"]! + ((string?)r["code"] is { } code ? ":" + code : string.Empty))];

    public static async Task RegisterDevice(TestSilo silo, string deviceId, string gatewayId, string? ownerId = null)
    {
        var admin = silo.As("ops", Roles.Admin);
        var owner = ownerId ?? Ids.New("owner");
        var user = await admin.Post("/api/v1/users", new { userId = owner, email = $"{owner}@example.com", displayName = "Owner" }, "reg-" + owner);
        Assert.True(user.Response.StatusCode is HttpStatusCode.Created or HttpStatusCode.Conflict, user.Body?.ToJsonString());
        (await admin.Post("/api/v1/devices", new { deviceId, ownerId = owner, gatewayId, kind = "sensor", model = "TH-100" }, "dev-" + deviceId))
            .AssertStatus(HttpStatusCode.Created);
    }

    public static HttpClient Gateway(this TestSilo silo, string gatewayId) => silo.As(gatewayId, Roles.Gateway);

    public static string NewTraceParent(out string traceId)
    {
        traceId = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());
        var spanId = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())[..16];
        return $"00-{traceId}-{spanId}-01";
    }

    public static StringContent JsonBody(string json) => new(json, Encoding.UTF8, "application/json");
}
