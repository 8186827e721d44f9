using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using CloudEdge.Bench.Streams;
using CloudEdge.Streaming;
using CloudEdge.Testing.Platform;
using CloudEdge.Testing.Postgres;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using Orleans.Streams;

var mode = args.Length > 0 ? args[0] : "all";
if (mode is not ("publish" or "latency" or "idle" or "all"))
{
    Console.Error.WriteLine("usage: CloudEdge.Bench.Streams [publish|latency|idle|all]");
    return 2;
}

await using var server = await PostgresServer.CreateAsync();
var connectionString = await server.CreateDatabaseAsync("bench");
using var host = new HostBuilder()
    .ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning))
    .UseOrleans(silo => silo
        .UseLocalhostClustering(siloPort: RepositoryLayout.FreePort(), gatewayPort: RepositoryLayout.FreePort())
        .AddMemoryGrainStorage("PubSubStore")
        .AddPostgresStreams("platform", options => options.ConnectionString = connectionString))
    .Build();
await host.StartAsync();
var streams = host.Services.GetRequiredService<IClusterClient>().GetStreamProvider("platform");
Console.WriteLine($"PostgreSQL {server.Port}, {Environment.ProcessorCount} cores, .NET {Environment.Version}");

if (mode is "idle" or "all")
{
    // What the receivers' polling and long-polls cost a silo with nothing to deliver.
    await Task.Delay(TimeSpan.FromSeconds(5));
    var before = Process.GetCurrentProcess().TotalProcessorTime;
    await Task.Delay(TimeSpan.FromSeconds(20));
    var cpu = Process.GetCurrentProcess().TotalProcessorTime - before;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"idle silo, 8 queues, 20 s: process CPU {cpu.TotalSeconds:F2} s ({cpu.TotalSeconds / 20 * 100:F1}% of a core)"));
}

if (mode is "publish" or "all")
{
    var stream = streams.GetStream<BenchEvent>(StreamId.Create("bench", "publish"));
    await PublishAsync(stream, batch: 1, events: 300);
    await PublishAsync(stream, batch: 50, events: 1_000);
    await PublishAsync(stream, batch: 1, events: 5_000);
    await PublishAsync(stream, batch: 50, events: 50_000);
}

if (mode is "latency" or "all")
{
    await LatencyAsync(streams.GetStream<BenchEvent>(StreamId.Create("bench", "latency")), perSecond: 50, seconds: 20);
}

await host.StopAsync();
return 0;

static async Task PublishAsync(IAsyncStream<BenchEvent> stream, int batch, int events)
{
    var stopwatch = Stopwatch.StartNew();
    var cpu = Process.GetCurrentProcess().TotalProcessorTime;
    for (var sent = 0; sent < events; sent += batch)
    {
        if (batch == 1)
        {
            await stream.OnNextAsync(new BenchEvent(sent, Stopwatch.GetTimestamp()));
        }
        else
        {
            await stream.OnNextBatchAsync(Enumerable.Range(sent, batch).Select(i => new BenchEvent(i, Stopwatch.GetTimestamp())).ToList());
        }
    }

    var elapsed = stopwatch.Elapsed;
    var processCpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"publish batch={batch,-3} events={events,-6} {events / elapsed.TotalSeconds,9:F0} events/s  {elapsed.TotalMilliseconds / (events / batch),7:F2} ms/call  bench-process CPU {processCpu.TotalSeconds:F1} s"));
}

static async Task LatencyAsync(IAsyncStream<BenchEvent> stream, int perSecond, int seconds)
{
    var latencies = new ConcurrentQueue<double>();
    var handle = await stream.SubscribeAsync((item, _) =>
    {
        latencies.Enqueue(Stopwatch.GetElapsedTime(item.PublishedAt).TotalMilliseconds);
        return Task.CompletedTask;
    });

    var total = perSecond * seconds;
    var interval = TimeSpan.FromSeconds(1.0 / perSecond);
    var start = Stopwatch.GetTimestamp();
    for (var i = 0; i < total; i++)
    {
        var due = start + (long)(i * interval.TotalSeconds * Stopwatch.Frequency);
        var wait = TimeSpan.FromSeconds((due - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency);
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait);
        }

        await stream.OnNextAsync(new BenchEvent(i, Stopwatch.GetTimestamp()));
    }

    var deadline = Stopwatch.StartNew();
    while (latencies.Count < total && deadline.Elapsed < TimeSpan.FromSeconds(60))
    {
        await Task.Delay(50);
    }

    await handle.UnsubscribeAsync();
    var sorted = latencies.Order().ToArray();
    double Percentile(double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"latency publish->in-silo subscriber at {perSecond}/s for {seconds} s: delivered {sorted.Length}/{total}  p50 {Percentile(0.50):F1} ms  p99 {Percentile(0.99):F1} ms  max {sorted[^1]:F1} ms"));
}

namespace CloudEdge.Bench.Streams
{
    /// <summary>A bench event: its number and when it was published (Stopwatch ticks, one process).</summary>
    [GenerateSerializer]
    [Alias("CloudEdge.Bench.Streams.BenchEvent")]
    [Immutable]
    public sealed record BenchEvent([property: Id(0)] int Number, [property: Id(1)] long PublishedAt);
}
