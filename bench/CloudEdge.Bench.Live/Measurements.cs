using System.Diagnostics;
using System.Globalization;

namespace CloudEdge.Bench.Live;

/// <summary>Latency samples in milliseconds and their percentiles (nearest rank).</summary>
internal sealed class Latencies
{
    private readonly List<double> samples = [];
    private readonly Lock gate = new();

    public int Count
    {
        get
        {
            lock (gate)
            {
                return samples.Count;
            }
        }
    }

    public static double Milliseconds(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMilliseconds;

    public void Add(double milliseconds)
    {
        lock (gate)
        {
            samples.Add(milliseconds);
        }
    }

    public double Percentile(double p)
    {
        lock (gate)
        {
            if (samples.Count == 0)
            {
                return double.NaN;
            }

            var sorted = samples.Order().ToList();
            return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
        }
    }

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"n={Count} p50 {Percentile(0.5):F1} ms, p90 {Percentile(0.9):F1} ms, p99 {Percentile(0.99):F1} ms, max {Percentile(1):F1} ms");
}

/// <summary>A process's memory from /proc/{pid}/status: resident set, and its anonymous part (heaps, stacks; not mapped files).</summary>
internal readonly record struct ProcessMemory(long RssKiB, long AnonKiB)
{
    public static ProcessMemory Of(int pid)
    {
        long rss = 0, anon = 0;
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = KiB(line);
            else if (line.StartsWith("RssAnon:", StringComparison.Ordinal)) anon = KiB(line);
        }

        return new ProcessMemory(rss, anon);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"RSS {RssKiB / 1024.0:F1} MiB (anonymous {AnonKiB / 1024.0:F1} MiB)");

    private static long KiB(string line) =>
        long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
}
