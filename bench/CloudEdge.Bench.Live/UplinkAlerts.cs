using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace CloudEdge.Bench.Live;

/// <summary>Alert items sent the way an edge agent sends them (docs/uplink.md): one item per gzip JSON POST, as the gateway.</summary>
internal static class UplinkAlerts
{
    /// <summary>POSTs alert item <paramref name="seq"/> of <paramref name="deviceId"/>; its readingSeq is the same number, which the SSE event carries.</summary>
    public static async Task PostAsync(HttpClient gateway, string gatewayId, string deviceId, long seq, CancellationToken cancellationToken)
    {
        var item = new
        {
            id = $"{gatewayId}:{deviceId}:{seq}", type = "alert", deviceId, seq,
            traceparent = $"00-{ActivityTraceId.CreateRandom().ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01",
            alert = new
            {
                at = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                kind = "temperature", value = 80.0, score = 0.99, threshold = 0.5, modelVersion = "1.0.0", readingSeq = seq,
            },
        };
        using var body = new MemoryStream();
        using (var gzip = new GZipStream(body, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { items = new[] { item } })));
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/v1/gateways/{gatewayId}/uplink") { Content = new ByteArrayContent(body.ToArray()) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Content.Headers.ContentEncoding.Add("gzip");
        using var response = await gateway.SendAsync(request, cancellationToken);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"uplink answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
        }
    }
}
