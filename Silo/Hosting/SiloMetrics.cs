using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CloudEdge.Silo.Hosting;

/// <summary>The silo's own telemetry: the "CloudEdge.Silo" activity source and meter.</summary>
internal sealed class SiloMetrics : IDisposable
{
    public const string Name = "CloudEdge.Silo";

    public static readonly ActivitySource ActivitySource = new(Name);

    private readonly Meter meter;
    private readonly Counter<long> problems;
    private readonly Counter<long> rateLimited;
    private readonly Counter<long> uplinkItems;

    public SiloMetrics(IMeterFactory meterFactory)
    {
        meter = meterFactory.Create(Name);
        problems = meter.CreateCounter<long>("cloudedge.silo.problems", description: "Requests answered with a problem (4xx/5xx from a domain or request error), by status and code.");
        rateLimited = meter.CreateCounter<long>("cloudedge.silo.rate_limited", description: "Requests refused with 429 by the per-client rate limiter.");
        uplinkItems = meter.CreateCounter<long>("cloudedge.silo.uplink.items", "{item}", "Uplink items by result: applied, duplicate, rejected (with code).");
    }

    public void RecordProblem(int status, string code) =>
        problems.Add(1, new KeyValuePair<string, object?>("http.response.status_code", status), new KeyValuePair<string, object?>("code", code));

    public void RecordRateLimited() => rateLimited.Add(1);

    public void RecordUplink(IEnumerable<Api.UplinkItemResult> results)
    {
        if (!uplinkItems.Enabled)
        {
            return;
        }

        foreach (var group in results.GroupBy(r => (r.Status, r.Code)))
        {
            uplinkItems.Add(group.LongCount(), new KeyValuePair<string, object?>("status", group.Key.Status), new KeyValuePair<string, object?>("code", group.Key.Code ?? string.Empty));
        }
    }

    public void Dispose() => meter.Dispose();
}
