using System.Net;
using System.Net.Sockets;

namespace CloudEdge.Testing.Platform;

/// <summary>How to run an edge agent: its gateway, Silo, credentials, broker port and directories (kept across restarts).</summary>
public sealed record EdgeAgentSettings(string GatewayId, string DataDirectory, string SiloUrl, string GatewayToken, string UsersFile)
{
    /// <summary>0: pick a free port when starting (a restart then keeps the port it got).</summary>
    public int MqttPort { get; init; }

    public string? AclFile { get; init; }

    /// <summary>The model the agent starts with; default the repository's <c>models/anomaly/v1</c>.</summary>
    public string ModelDirectory { get; init; } = Path.Combine(RepositoryLayout.Root, "models", "anomaly", "v1");

    public TimeSpan WindowLength { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Extra configuration passed as <c>--Key value</c> flags (e.g. <c>["EdgeAgent:Uplink:BatchDelay"] = "00:00:00.010"</c>).</summary>
    public IReadOnlyDictionary<string, string> Configuration { get; init; } = new Dictionary<string, string>();

    /// <summary>Extra environment (e.g. OTEL_EXPORTER_OTLP_ENDPOINT); null removes a variable.</summary>
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();

    public string? LogFile { get; init; }

    /// <summary>
    /// What runs the agent instead of <c>dotnet CloudEdge.EdgeAgent.dll</c>: a program and its first arguments, e.g.
    /// <c>qemu-aarch64</c> and a self-contained linux-arm64 publish. The agent's flags follow.
    /// </summary>
    public IReadOnlyList<string>? Command { get; init; }
}

/// <summary>
/// The real edge agent (<c>EdgeAgent/bin/{configuration}/net10.0/CloudEdge.EdgeAgent.dll</c>): embedded broker on
/// 127.0.0.1, ready when its MQTT port accepts connections.
/// </summary>
public sealed class EdgeAgentProcess : IAsyncDisposable
{
    private EdgeAgentProcess(HostProcess process, EdgeAgentSettings settings)
    {
        Process = process;
        Settings = settings;
    }

    public HostProcess Process { get; }

    /// <summary>The settings it runs with, port filled in: start another with them to restart on the same journal and outbox.</summary>
    public EdgeAgentSettings Settings { get; }

    public int MqttPort => Settings.MqttPort;

    public static string Dll => RepositoryLayout.BuiltDll("EdgeAgent", "CloudEdge.EdgeAgent");

    public static async Task<EdgeAgentProcess> StartAsync(EdgeAgentSettings settings, TimeSpan? timeout = null)
    {
        settings = settings.MqttPort == 0 ? settings with { MqttPort = RepositoryLayout.FreePort() } : settings;
        Directory.CreateDirectory(settings.DataDirectory);
        List<string> arguments =
        [
            "--EdgeAgent:GatewayId", settings.GatewayId,
            "--EdgeAgent:DataDirectory", settings.DataDirectory,
            "--EdgeAgent:ModelDirectory", settings.ModelDirectory,
            "--EdgeAgent:WindowLength", settings.WindowLength.ToString("c", System.Globalization.CultureInfo.InvariantCulture),
            "--EdgeAgent:Broker:ListenAddress", "127.0.0.1",
            "--EdgeAgent:Broker:TcpPort", settings.MqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--EdgeAgent:Broker:UsersFile", settings.UsersFile,
            "--EdgeAgent:Uplink:SiloUrl", settings.SiloUrl,
            "--EdgeAgent:Uplink:Token", settings.GatewayToken,
        ];
        if (settings.AclFile is not null)
        {
            arguments.AddRange(["--EdgeAgent:Broker:AclFile", settings.AclFile]);
        }

        foreach (var (key, value) in settings.Configuration)
        {
            arguments.Add("--" + key);
            arguments.Add(value);
        }

        var process = settings.Command is { Count: > 0 } command
            ? HostProcess.StartCommand($"edge-agent {settings.GatewayId}", command, settings.DataDirectory, arguments, settings.Environment, settings.LogFile)
            : HostProcess.Start($"edge-agent {settings.GatewayId}", Dll, arguments, settings.Environment, settings.LogFile);
        var agent = new EdgeAgentProcess(process, settings);
        try
        {
            await process.WaitUntilAsync(() => Task.FromResult(Accepts(settings.MqttPort)), "the MQTT port to accept connections", timeout);
        }
        catch
        {
            await agent.DisposeAsync();
            throw;
        }

        return agent;
    }

    /// <summary>SIGKILL: the agent dies mid-flight (journal and outbox are what survive).</summary>
    public void Kill() => Process.Kill();

    /// <summary>SIGTERM: graceful stop (the agent flushes its journal).</summary>
    public Task<int> StopAsync() => Process.StopAsync();

    public ValueTask DisposeAsync() => Process.DisposeAsync();

    private static bool Accepts(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
