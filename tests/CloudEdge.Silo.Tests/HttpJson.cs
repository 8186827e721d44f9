using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace CloudEdge.Silo.Tests;

internal static class HttpJson
{
    public static async Task<(HttpResponseMessage Response, JsonNode? Body)> Send(
        this HttpClient client, HttpMethod method, string path, object? body = null, string? idempotencyKey = null, string? ifMatch = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is string raw)
        {
            request.Content = new StringContent(raw, Encoding.UTF8, "application/json");
        }
        else if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    public static Task<(HttpResponseMessage Response, JsonNode? Body)> Get(this HttpClient client, string path) =>
        client.Send(HttpMethod.Get, path);

    public static Task<(HttpResponseMessage Response, JsonNode? Body)> Post(this HttpClient client, string path, object? body, string? idempotencyKey = null, string? ifMatch = null) =>
        client.Send(HttpMethod.Post, path, body, idempotencyKey, ifMatch);

    public static Task<(HttpResponseMessage Response, JsonNode? Body)> Patch(this HttpClient client, string path, object? body, string? idempotencyKey = null, string? ifMatch = null) =>
        client.Send(HttpMethod.Patch, path, body, idempotencyKey, ifMatch);

    /// <summary>Asserts the status and, for errors, a ProblemDetails body with that status and code.</summary>
    public static JsonNode AssertStatus(this (HttpResponseMessage Response, JsonNode? Body) result, HttpStatusCode expected, string? code = null)
    {
        var (response, body) = result;
        Assert.True(response.StatusCode == expected, $"Expected {(int)expected}, got {(int)response.StatusCode}: {body?.ToJsonString()}");
        Assert.NotNull(body);
        if ((int)expected >= 400)
        {
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal((int)expected, (int)body!["status"]!);
            if (code is not null)
            {
                Assert.Equal(code, (string?)body["code"]);
            }
        }

        return body!;
    }
}
