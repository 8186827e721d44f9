using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;

namespace CloudEdge.EdgeAgent.Tests;

/// <summary>The real Silo (its built dll, run with dotnet) on a free loopback port with a private data directory.</summary>
internal sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;

    private SiloProcess(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }
    public string Url => $"http://127.0.0.1:{Port}/";

    public static string Dll
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CloudEdge.sln"))) dir = dir.Parent;
            if (dir is null) throw new InvalidOperationException("CloudEdge.sln not found above " + AppContext.BaseDirectory);
            var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
            var dll = Path.Combine(dir.FullName, "Silo", "bin", configuration, "net10.0", "CloudEdge.Silo.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException("The Silo is not built (the test project builds it).", dll);
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static async Task<SiloProcess> StartAsync(int port, string dataDirectory, string signingKey)
    {
        var start = Start(signingKey, "--urls", $"http://127.0.0.1:{port}", "--Silo:DataDirectory", dataDirectory);
        var process = Process.Start(start)!;
        // Drain the output so the child never blocks on a full pipe.
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var silo = new SiloProcess(process, port);
        using var http = new HttpClient();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (true)
        {
            if (process.HasExited) throw new InvalidOperationException($"The Silo exited with {process.ExitCode}.");
            try
            {
                using var response = await http.GetAsync($"{silo.Url}health/ready");
                if (response.IsSuccessStatusCode) return silo;
            }
            catch (HttpRequestException)
            {
            }
            if (DateTime.UtcNow > deadline)
            {
                await silo.DisposeAsync();
                throw new TimeoutException("The Silo did not become ready.");
            }
            await Task.Delay(100);
        }
    }

    /// <summary>Mints a token with the Silo's own <c>token</c> subcommand.</summary>
    public static async Task<string> MintAsync(string signingKey, string sub, string role)
    {
        using var process = Process.Start(Start(signingKey, "token", "--sub", sub, "--role", role, "--key", signingKey))!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, await error);
        return (await output).Trim().Split('\n')[^1].Trim();
    }

    public static HttpClient Client(string url, string token)
    {
        var client = new HttpClient { BaseAddress = new Uri(url) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    private static ProcessStartInfo Start(string signingKey, params string[] args)
    {
        var dll = Dll;
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(dll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["Auth__SigningKey"] = signingKey;
        start.Environment["RateLimiting__Enabled"] = "false";
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment.Remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        return start;
    }

    /// <summary>Kills the process (no graceful shutdown): what a crash looks like.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _process.WaitForExitAsync(timeout.Token);
        }
        _process.Dispose();
    }
}
