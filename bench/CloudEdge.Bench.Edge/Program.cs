using System.Globalization;
using CloudEdge.Bench.Edge;

// CloudEdge edge benchmarks (docs/benchmarks.md, "## Edge").
// Usage: CloudEdge.Bench.Edge [ingest|mqtt|mqtt-qemu|bytes|latency|all] [ingest window seconds, default 5]
//   ingest: in-process pipeline; mqtt: through the agent's broker (x64), with the in-process figure of the same run
//   as its baseline; mqtt-qemu: the linux-arm64 agent under qemu-aarch64, for information.
var mode = args.Length > 0 ? args[0] : "all";
if (mode is not ("ingest" or "mqtt" or "mqtt-qemu" or "bytes" or "latency" or "all"))
{
    Console.Error.WriteLine("usage: CloudEdge.Bench.Edge [ingest|mqtt|mqtt-qemu|bytes|latency|all] [ingest window seconds]");
    return 2;
}
if (args.Length > 1) IngestBench.IngestWindow = TimeSpan.FromSeconds(int.Parse(args[1], CultureInfo.InvariantCulture));
var inProcess = 0.0;
if (mode is "ingest" or "mqtt" or "all") inProcess = await IngestBench.RunAsync();
if (mode is "mqtt" or "all")
{
    var broker = await MqttIngestBench.RunAsync(qemu: false);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"mqtt ingest ratio through the broker / in-process (same run): {broker / inProcess:F3}; target >= 50,000 readings/s through the broker: {(broker >= 50_000 ? "MET" : "MISSED")}"));
}
if (mode is "mqtt-qemu")
{
    // Emulation runs each arm64 instruction in software: fewer readings, for information only.
    MqttIngestBench.Devices = 10;
    MqttIngestBench.ReadingsPerDevice = 1000;
    await MqttIngestBench.RunAsync(qemu: true);
}
if (mode is "bytes" or "all") await UplinkBytesBench.RunAsync();
if (mode is "latency" or "all") await AlertLatencyBench.RunAsync(300);
return 0;
