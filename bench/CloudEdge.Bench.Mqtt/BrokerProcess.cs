using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace CloudEdge.Bench.Mqtt;

/// <summary>A broker under test in its own process on a free loopback port: ours (BrokerHost), a private mosquitto or MQTTnet's server.</summary>
internal sealed class BrokerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string? _configFile;

    private BrokerProcess(string name, Process process, int port, string? configFile)
    {
        Name = name;
        _process = process;
        Port = port;
        _configFile = configFile;
    }

    public string Name { get; }
    public int Port { get; }

    public static async Task<BrokerProcess> StartOursAsync(int queueLimit)
    {
        var port = FreePort();
        var dll = LocateBuiltDll(Path.Combine("Mqtt", "BrokerHost"), "CloudEdge.Mqtt.BrokerHost.dll");
        // BENCH_BROKER_LOG=1 shows the broker's log (drops are logged) on the console.
        var showLog = Environment.GetEnvironmentVariable("BENCH_BROKER_LOG") is not null;
        var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = !showLog, RedirectStandardError = !showLog };
        foreach (var a in new[] { dll, "--port", port.ToString(), "--allow-anonymous", "--max-queued", queueLimit.ToString() }) info.ArgumentList.Add(a);
        info.Environment["DOTNET_gcServer"] = "0";
        var process = Process.Start(info)!;
        if (!showLog)
        {
            _ = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
        }
        var broker = new BrokerProcess("cloudedge", process, port, null);
        await broker.WaitListeningAsync();
        return broker;
    }

    public static async Task<BrokerProcess> StartMosquittoAsync(int queueLimit)
    {
        var port = FreePort();
        var config = Path.Combine(Path.GetTempPath(), $"cloudedge-bench-mosquitto-{port}.conf");
        await File.WriteAllTextAsync(config, string.Join('\n',
            $"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "max_connections -1",
            "max_inflight_messages 1000",
            $"max_queued_messages {queueLimit}",
            "log_dest none",
            ""));
        var info = new ProcessStartInfo("mosquitto") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(config);
        var process = Process.Start(info)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        var broker = new BrokerProcess("mosquitto", process, port, config);
        await broker.WaitListeningAsync();
        return broker;
    }

    /// <summary>MQTTnet 5.2's server with default options plus persistent sessions (bench/CloudEdge.Bench.MqttnetServer).</summary>
    public static async Task<BrokerProcess> StartMqttnetAsync()
    {
        var port = FreePort();
        var dll = LocateBuiltDll(Path.Combine("bench", "CloudEdge.Bench.MqttnetServer"), "CloudEdge.Bench.MqttnetServer.dll");
        var info = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { dll, "--port", port.ToString() }) info.ArgumentList.Add(a);
        var process = Process.Start(info)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        var broker = new BrokerProcess("mqttnet", process, port, null);
        await broker.WaitListeningAsync();
        return broker;
    }

    /// <summary>Resident set size of the broker process, in bytes.</summary>
    public long ResidentBytes()
    {
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        return 0;
    }

    private async Task WaitListeningAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"{Name} exited with {_process.ExitCode}.");
            try
            {
                using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await probe.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }
        throw new TimeoutException($"{Name} did not listen on {Port}.");
    }

    private static string LocateBuiltDll(string projectDir, string fileName)
    {
        // bench/CloudEdge.Bench.Mqtt/bin/<Configuration>/net10.0/ -> <projectDir>/bin/<Configuration>/net10.0/
        var baseDir = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = baseDir.Parent!.Name;
        var dir = baseDir;
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CloudEdge.sln"))) dir = dir.Parent;
        var dll = Path.Combine(dir?.FullName ?? throw new DirectoryNotFoundException("Repository root not found."), projectDir, "bin", configuration, baseDir.Name, fileName);
        return File.Exists(dll) ? dll : throw new FileNotFoundException($"Build {projectDir} first.", dll);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        if (_configFile is not null) File.Delete(_configFile);
    }
}
