using System.Diagnostics;
using CloudEdge.Runtime;
using CloudEdge.Runtime.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

/// <summary>
/// Stream throughput: events published (batched and one by one) to one stream and delivered to one
/// subscriber, durable SQLite provider against the in-memory provider in the same run, alternating rounds.
/// </summary>
internal static class StreamsBenchmark
{
    private const int ConcurrentProducers = 32;

    public static async Task RunAsync(int events, int batchSize, int singles, int rounds)
    {
        var directory = Path.Combine(Path.GetTempPath(), "cloudedge-bench-streams", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        Console.WriteLine($"CloudEdge.Runtime streams benchmark: {events:N0} events per round in batches of {batchSize}, {singles:N0} single publishes, " +
                          $"{rounds} rounds, {Environment.ProcessorCount} cores, Server GC {System.Runtime.GCSettings.IsServerGC}, .NET {Environment.Version}");
        try
        {
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Logging.ClearProviders();
            builder.UseSilo(silo => silo
                .AddSqliteStreams("durable", o => o.DataDirectory = directory)
                .AddMemoryStreams("memory"));
            builder.Services.Configure<SiloOptions>(o => o.SiloName = "bench");
            using var host = builder.Build();
            await host.StartAsync();

            var results = new Dictionary<string, List<(double Published, double Delivered, double Singles, double Concurrent)>> { ["durable"] = [], ["memory"] = [] };
            for (var round = 0; round <= rounds; round++)
            {
                foreach (var name in new[] { "memory", "durable" })
                {
                    var provider = host.Services.GetRequiredKeyedService<IStreamProvider>(name);
                    var result = await RunOnce(provider, round == 0 ? Math.Min(events, 20_000) : events, batchSize, round == 0 ? 100 : singles);
                    if (round == 0)
                    {
                        continue; // warm-up
                    }

                    results[name].Add(result);
                    Console.WriteLine($"round {round} {name,-8}: published {result.Published,12:N0} ev/s (batched), delivered {result.Delivered,12:N0} ev/s end to end, single publishes {result.Singles,10:N0} ev/s, from {ConcurrentProducers} producers {result.Concurrent,10:N0} ev/s");
                }
            }

            Console.WriteLine();
            foreach (var (name, list) in results)
            {
                Console.WriteLine($"median {name,-8}: published {Median(list.Select(r => r.Published)),12:N0} ev/s, delivered {Median(list.Select(r => r.Delivered)),12:N0} ev/s, single publishes {Median(list.Select(r => r.Singles)),10:N0} ev/s, from {ConcurrentProducers} producers {Median(list.Select(r => r.Concurrent)),10:N0} ev/s");
            }

            Console.WriteLine($"durable / memory (delivered): {Median(results["durable"].Select(r => r.Delivered)) / Median(results["memory"].Select(r => r.Delivered)):0.00}");
            await host.StopAsync();
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task<(double Published, double Delivered, double Singles, double Concurrent)> RunOnce(IStreamProvider provider, int events, int batchSize, int singles)
    {
        var stream = provider.GetStream<Reading>(StreamId.Create("bench", Guid.NewGuid().ToString("N")));
        var received = 0L;
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handle = await stream.SubscribeAsync((item, _) =>
        {
            if (++received == events)
            {
                all.TrySetResult();
            }

            return Task.CompletedTask;
        });

        var batch = new Reading[batchSize];
        var start = Stopwatch.GetTimestamp();
        for (var sent = 0; sent < events; sent += batchSize)
        {
            var n = Math.Min(batchSize, events - sent);
            for (var i = 0; i < n; i++)
            {
                batch[i] = new Reading("sensor-1", sent + i, 21.5 + i);
            }

            await stream.OnNextBatchAsync(n == batchSize ? batch : batch[..n]);
        }

        var published = Stopwatch.GetElapsedTime(start);
        await all.Task.WaitAsync(TimeSpan.FromMinutes(5));
        var delivered = Stopwatch.GetElapsedTime(start);
        await handle.UnsubscribeAsync();

        var single = provider.GetStream<Reading>(StreamId.Create("bench-single", Guid.NewGuid().ToString("N")));
        var singleStart = Stopwatch.GetTimestamp();
        for (var i = 0; i < singles; i++)
        {
            await single.OnNextAsync(new Reading("sensor-1", i, 21.5));
        }

        var singleTime = Stopwatch.GetElapsedTime(singleStart);

        // The same number of single publishes from concurrent producers (many grains each publishing one reading).
        var shared = provider.GetStream<Reading>(StreamId.Create("bench-concurrent", Guid.NewGuid().ToString("N")));
        var concurrentStart = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, ConcurrentProducers).Select(p => Task.Run(async () =>
        {
            for (var i = p; i < singles; i += ConcurrentProducers)
            {
                await shared.OnNextAsync(new Reading($"sensor-{p}", i, 21.5));
            }
        })));
        var concurrentTime = Stopwatch.GetElapsedTime(concurrentStart);
        return (events / published.TotalSeconds, events / delivered.TotalSeconds, singles / singleTime.TotalSeconds, singles / concurrentTime.TotalSeconds);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? 0 : sorted[sorted.Length / 2];
    }

    public sealed record Reading(string Sensor, long Sequence, double Value);
}
