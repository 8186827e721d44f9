using System.Globalization;
using CloudEdge.Bench.Live;

// CloudEdge live (SSE) benchmarks (docs/benchmarks.md, "## Live").
// Usage: CloudEdge.Bench.Live latency [--alerts N] [--baseline N] [--batch-delay ms] [--devices N] [--rate R] [--window s]
//        CloudEdge.Bench.Live fanout [--subscribers N] [--events N] [--devices N] [--event-rate R]
if (args.Length == 0 || args[0] is not ("latency" or "fanout"))
{
    Console.Error.WriteLine("usage: CloudEdge.Bench.Live latency|fanout [--option value]... (see Program.cs)");
    return 2;
}

var options = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 1; i + 1 < args.Length; i += 2)
{
    options[args[i]] = args[i + 1];
}

double Number(string name, double fallback) =>
    options.TryGetValue(name, out var text) ? double.Parse(text, CultureInfo.InvariantCulture) : fallback;

using var budget = new CancellationTokenSource(TimeSpan.FromMinutes(20));
if (args[0] == "latency")
{
    var defaults = new PublishToSseSettings();
    await PublishToSseBench.RunAsync(new PublishToSseSettings
    {
        Alerts = (int)Number("--alerts", defaults.Alerts),
        BaselineAlerts = (int)Number("--baseline", defaults.BaselineAlerts),
        BatchDelay = options.ContainsKey("--batch-delay") ? TimeSpan.FromMilliseconds(Number("--batch-delay", 0)) : defaults.BatchDelay,
        Devices = (int)Number("--devices", defaults.Devices),
        WindowLength = TimeSpan.FromSeconds(Number("--window", defaults.WindowLength.TotalSeconds)),
        Rate = Number("--rate", defaults.Rate),
    }, budget.Token);
}
else
{
    var defaults = new FanOutSettings();
    await FanOutBench.RunAsync(new FanOutSettings
    {
        Subscribers = (int)Number("--subscribers", defaults.Subscribers),
        Events = (int)Number("--events", defaults.Events),
        Devices = (int)Number("--devices", defaults.Devices),
        EventRate = Number("--event-rate", defaults.EventRate),
    }, budget.Token);
}

return 0;
