using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudEdge.Silo.Tests;

public sealed class TelemetryTests
{
    [Fact]
    public async Task Traces_and_metrics_go_to_the_configured_otlp_endpoint()
    {
        // A private OTLP/HTTP receiver on a free loopback port that records what it is sent.
        var received = new ConcurrentBag<(string Path, string ContentType, byte[] Body)>();
        var receiverBuilder = WebApplication.CreateSlimBuilder();
        receiverBuilder.WebHost.UseUrls("http://127.0.0.1:0");
        receiverBuilder.Logging.ClearProviders();
        await using var receiver = receiverBuilder.Build();
        receiver.MapPost("/v1/{signal}", async (HttpContext http) =>
        {
            using var body = new MemoryStream();
            await http.Request.Body.CopyToAsync(body);
            received.Add((http.Request.Path.Value!, http.Request.ContentType ?? string.Empty, body.ToArray()));
            return Results.Ok();
        });
        await receiver.StartAsync();
        var endpoint = receiver.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        var silo = await TestSilo.StartAsync(settings: new Dictionary<string, string> { ["Telemetry:OtlpEndpoint"] = endpoint + "/" });
        try
        {
            (await silo.As("tracy").Get("/api/v1/ping")).AssertStatus(HttpStatusCode.OK);
            (await silo.As("tracy").Get("/api/v1/users/tracy")).AssertStatus(HttpStatusCode.NotFound, "user_not_found");
        }
        finally
        {
            // Stopping the silo disposes the providers, which flushes pending spans and metrics.
            await silo.DisposeAsync();
        }

        var traces = received.Where(r => r.Path == "/v1/traces").ToList();
        Assert.NotEmpty(traces);
        Assert.All(traces, t => Assert.Equal("application/x-protobuf", t.ContentType));
        var payload = Encoding.UTF8.GetString([.. traces.SelectMany(t => t.Body)]);
        Assert.Contains("cloudedge-silo", payload, StringComparison.Ordinal);
        Assert.Contains("Microsoft.AspNetCore", payload, StringComparison.Ordinal);
        Assert.Contains("CloudEdge.Runtime", payload, StringComparison.Ordinal);
        Assert.Contains("IUserGrain", payload, StringComparison.Ordinal);
        Assert.Contains(received, r => r.Path == "/v1/metrics");
    }
}
