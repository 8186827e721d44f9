using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CloudEdge.DeviceSdk.Tests;

/// <summary>What a private mosquitto instance is configured with.</summary>
internal sealed class MosquittoSettings
{
    /// <summary>User name to password; when non-empty, anonymous access is off and a password_file is made with mosquitto_passwd.</summary>
    public Dictionary<string, string> Users { get; } = [];
    public TestPki? Tls { get; set; }
    public bool RequireClientCertificate { get; set; }
    public bool Persistence { get; set; }
    /// <summary>Extra lines for the listener block (max_packet_size, max_inflight_messages, ...).</summary>
    public List<string> ExtraLines { get; } = [];
}

/// <summary>
/// A private Debian mosquitto on a free loopback port, started from a generated conf file and killed at the end.
/// It can be stopped (SIGKILL), frozen (SIGSTOP) and restarted on the same port, with its persistence file.
/// </summary>
internal sealed class Mosquitto : IAsyncDisposable
{
    private readonly string _directory;
    private readonly string _confPath;
    private readonly StringBuilder _log = new();
    private Process? _process;

    private Mosquitto(string directory, string confPath, int port)
    {
        _directory = directory;
        _confPath = confPath;
        Port = port;
    }

    public int Port { get; }
    public string Directory => _directory;
    public string DatabasePath => Path.Combine(_directory, "mosquitto.db");

    public string Log
    {
        get
        {
            lock (_log) return _log.ToString();
        }
    }

    public static async Task<Mosquitto> StartAsync(Action<MosquittoSettings>? configure = null)
    {
        var settings = new MosquittoSettings();
        configure?.Invoke(settings);
        var directory = Path.Combine(Path.GetTempPath(), "cloudedge-mosquitto-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(directory);
        var port = FreePort();
        var conf = new StringBuilder();
        // Running as root mosquitto would drop to the 'mosquitto' user and lose access to this directory.
        if (Environment.UserName == "root") conf.AppendLine("user root");
        conf.AppendLine("log_dest stderr");
        conf.AppendLine("log_type error");
        conf.AppendLine("log_type warning");
        conf.AppendLine("log_type notice");
        conf.AppendLine("log_type information");
        conf.AppendLine("per_listener_settings false");
        if (settings.Persistence)
        {
            conf.AppendLine("persistence true");
            conf.AppendLine($"persistence_location {directory}/");
            conf.AppendLine("autosave_interval 0");
        }
        if (settings.Users.Count > 0)
        {
            var passwordFile = Path.Combine(directory, "passwords");
            var create = true;
            foreach (var (user, password) in settings.Users)
            {
                var args = create ? new[] { "-c", "-b", passwordFile, user, password } : ["-b", passwordFile, user, password];
                var (code, _, error) = await ExternalProcess.RunAsync("mosquitto_passwd", args, TimeSpan.FromSeconds(30));
                if (code != 0) throw new InvalidOperationException($"mosquitto_passwd failed: {error}");
                create = false;
            }
            conf.AppendLine("allow_anonymous false");
            conf.AppendLine($"password_file {passwordFile}");
        }
        else
        {
            conf.AppendLine("allow_anonymous true");
        }
        conf.AppendLine($"listener {port} 127.0.0.1");
        if (settings.Tls is { } pki)
        {
            var files = pki.WriteServerFiles(directory);
            conf.AppendLine($"cafile {files.CaFile}");
            conf.AppendLine($"certfile {files.CertFile}");
            conf.AppendLine($"keyfile {files.KeyFile}");
            conf.AppendLine($"require_certificate {(settings.RequireClientCertificate ? "true" : "false")}");
        }
        foreach (var line in settings.ExtraLines) conf.AppendLine(line);
        var confPath = Path.Combine(directory, "mosquitto.conf");
        await File.WriteAllTextAsync(confPath, conf.ToString());
        var broker = new Mosquitto(directory, confPath, port);
        await broker.RestartAsync();
        return broker;
    }

    /// <summary>Starts (again) on the same port and waits until it accepts connections.</summary>
    public async Task RestartAsync()
    {
        if (_process is { HasExited: false }) throw new InvalidOperationException("mosquitto is still running.");
        var info = new ProcessStartInfo("mosquitto") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(_confPath);
        var process = new Process { StartInfo = info };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        process.Start();
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        _process = process;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            if (process.HasExited) throw new InvalidOperationException($"mosquitto exited with {process.ExitCode}:\n{Log}");
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
    }

    /// <summary>SIGKILL: no goodbye to clients, no persistence save.</summary>
    public async Task KillAsync()
    {
        if (_process is not { } process || process.HasExited) return;
        process.Kill();
        await process.WaitForExitAsync();
    }

    public Task SignalAsync(string signal) =>
        ExternalProcess.RunAsync("kill", ["-" + signal, _process!.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10));

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process?.Dispose();
        try
        {
            System.IO.Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A file still held open by a dying process; the temp directory is cleaned by the OS eventually.
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
