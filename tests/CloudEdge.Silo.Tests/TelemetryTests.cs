using System.Net;
using CloudEdge.Testing.Otlp;

namespace CloudEdge.Silo.Tests;

public sealed class TelemetryTests
{
    [Fact]
    public async Task Traces_and_metrics_go_to_the_configured_otlp_endpoint()
    {
        // A private OTLP/HTTP receiver on a free loopback port that decodes what it is sent.
        await using var receiver = await OtlpReceiver.StartAsync();
        var silo = await TestSilo.StartAsync(settings: new Dictionary<string, string> { ["Telemetry:OtlpEndpoint"] = receiver.Endpoint });
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

        Assert.Empty(receiver.Errors);
        var spans = receiver.Spans;
        Assert.NotEmpty(spans);
        Assert.All(spans, s => Assert.Equal("cloudedge-silo", s.ServiceName));
        Assert.True(spans.Count(s => s.Scope == "Microsoft.AspNetCore" && s.Kind == OtlpSpanKind.Server) >= 2, "a server span per request");
        // The grain call made while serving GET /users/tracy is in that request's trace, under its server span.
        // Orleans' activity propagation makes a client span per outgoing call (the API's client and the silo's filters each may).
        var calls = spans.Where(s => s.Scope == "Microsoft.Orleans.Application" && s.Name.EndsWith("IUserGrain/Get", StringComparison.Ordinal) && s.Kind == OtlpSpanKind.Client).ToList();
        Assert.NotEmpty(calls);
        Assert.Single(calls.Select(c => c.TraceId).Distinct());
        foreach (var call in calls)
        {
            var ancestry = TraceTree.Ancestry(receiver.Trace(call.TraceId), call);
            Assert.Contains(ancestry, s => s.Scope == "Microsoft.AspNetCore" && s.Kind == OtlpSpanKind.Server);
        }

        Assert.Contains(spans, s => s.TraceId == calls[0].TraceId && s.Name.EndsWith("IUserGrain/Get", StringComparison.Ordinal) && s.Kind == OtlpSpanKind.Server);
        Assert.Empty(TraceTree.Orphans(receiver.Trace(calls[0].TraceId)));
        Assert.True(receiver.RequestCount("metrics") >= 1);
    }
}
