using System.Diagnostics;
using System.Security.Cryptography;

namespace CloudEdge.Onnx.Tests;

/// <summary>tools/fetch-onnxruntime.sh with the cache the build filled: a second run must change nothing.</summary>
public sealed class FetchScriptTests
{
    [Fact]
    public async Task Second_run_finds_the_verified_cache_and_fetches_nothing()
    {
        var script = Path.Combine(RepositoryRoot(), "tools", "fetch-onnxruntime.sh");
        var bundled = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libonnxruntime.so.1");

        // Never let this test fetch (tests stay off the network): the cache must already be complete.
        var expectedCache = Path.Combine(
            Environment.GetEnvironmentVariable("CLOUDEDGE_CACHE") is { Length: > 0 } root ? root
            : Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? Path.Combine(xdg, "cloudedge")
            : Path.Combine(Environment.GetEnvironmentVariable("HOME") ?? "/root", ".cache", "cloudedge"),
            "onnxruntime", "1.23.0");
        Assert.All(new[] { "linux-x64", "linux-arm64" }, rid => Assert.True(File.Exists(Path.Combine(expectedCache, rid, "libonnxruntime.so.1"))));

        var (exitCode, stdout, stderr) = await Run(script);
        Assert.True(exitCode == 0, stderr);
        var cache = stdout.Trim();
        Assert.Equal(expectedCache, cache);
        Assert.DoesNotContain("npm pack", stderr); // the cache was complete: nothing fetched

        foreach (var rid in new[] { "linux-x64", "linux-arm64" })
        {
            var cached = Path.Combine(cache, rid, "libonnxruntime.so.1");
            Assert.True(File.Exists(cached), cached);
            var built = Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native", "libonnxruntime.so.1");
            Assert.Equal(Sha256(cached), Sha256(built));
            Assert.Contains(Sha256(cached), File.ReadAllText(script)); // the script pins what it verified
        }
        Assert.True(File.Exists(bundled));
    }

    private static string Sha256(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> Run(string script)
    {
        using var process = Process.Start(new ProcessStartInfo("bash", [script])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "tools", "fetch-onnxruntime.sh"))) return dir.FullName;
        }
        throw new InvalidOperationException($"No tools/fetch-onnxruntime.sh above {AppContext.BaseDirectory}.");
    }
}
