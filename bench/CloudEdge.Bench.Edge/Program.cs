using CloudEdge.Bench.Edge;

// CloudEdge edge benchmarks (docs/benchmarks.md, "## Edge"). Usage: CloudEdge.Bench.Edge [ingest|bytes|latency|all] [ingest window seconds, default 5]
var mode = args.Length > 0 ? args[0] : "all";
if (mode is not ("ingest" or "bytes" or "latency" or "all"))
{
    Console.Error.WriteLine("usage: CloudEdge.Bench.Edge [ingest|bytes|latency|all] [ingest window seconds]");
    return 2;
}
if (args.Length > 1) IngestBench.IngestWindow = TimeSpan.FromSeconds(int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture));
if (mode is "ingest" or "all") await IngestBench.RunAsync();
if (mode is "bytes" or "all") await UplinkBytesBench.RunAsync();
if (mode is "latency" or "all") await AlertLatencyBench.RunAsync(300);
return 0;
