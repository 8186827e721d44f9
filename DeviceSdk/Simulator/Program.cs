using System.CommandLine;
using System.Globalization;
using CloudEdge.DeviceSdk;
using CloudEdge.Simulator;
using CloudEdge.Telemetry;
using Microsoft.Extensions.Configuration;

var host = new Option<string>("--host") { Description = "Broker host name or address.", DefaultValueFactory = _ => "127.0.0.1" };
var port = new Option<int>("--port") { Description = "Broker port (0: 1883, or 8883 with --tls).", DefaultValueFactory = _ => 0 };
var tls = new Option<bool>("--tls") { Description = "Connect with TLS." };
var caFile = new Option<string?>("--ca-file") { Description = "PEM CA that must have issued the broker's certificate (instead of the system store)." };
var certFile = new Option<string?>("--cert-file") { Description = "PEM client certificate (needs --key-file)." };
var keyFile = new Option<string?>("--key-file") { Description = "PEM private key of --cert-file." };
var serverName = new Option<string?>("--server-name") { Description = "Name the broker certificate must carry (default: --host)." };
var userName = new Option<string?>("--username") { Description = "User name; {deviceId} is replaced per device, e.g. '{deviceId}'." };
// A password on the command line is visible to every user of the machine (ps, /proc): it comes from a file or the environment.
var passwordFile = new Option<string?>("--password-file") { Description = $"File holding the password (first line); {{deviceId}} is replaced per device. Default: the {DevicePassword.EnvironmentVariable} environment variable." };
var devices = new Option<int>("--devices", "-n") { Description = "Number of simulated devices, one connection each.", DefaultValueFactory = _ => 1 };
var prefix = new Option<string>("--device-prefix") { Description = "Device ids are prefix + 4-digit number (sim-0001).", DefaultValueFactory = _ => "sim-" };
var firstDevice = new Option<int>("--first-device") { Description = "Number of the first device.", DefaultValueFactory = _ => 1 };
var rate = new Option<double>("--rate", "-r") { Description = "Readings per second per device.", DefaultValueFactory = _ => 1.0 };
var qos = new Option<int>("--qos", "-q") { Description = "QoS of the telemetry publishes: 0, 1 or 2.", DefaultValueFactory = _ => 1 };
qos.AcceptOnlyFromAmong("0", "1", "2");
var protocol = new Option<string>("--protocol", "-V") { Description = "MQTT version: 5 or 3.1.1.", DefaultValueFactory = _ => "5" };
protocol.AcceptOnlyFromAmong("5", "3.1.1");
var duration = new Option<double?>("--duration", "-d") { Description = "Seconds to run (default: until --count, or Ctrl-C)." };
var count = new Option<long?>("--count", "-c") { Description = "Readings per device, then stop (with --queue-dir: up to seq N, counting the runs before a restart)." };
var anomalyRate = new Option<double>("--anomaly-rate") { Description = "Probability per reading of starting an anomaly (spike, stuck value, drift jump).", DefaultValueFactory = _ => 0.01 };
var seed = new Option<int?>("--seed") { Description = "Random seed; the same seed gives the same signals." };
var kinds = new Option<string[]>("--kinds") { Description = "Sensor kinds, assigned to devices in turn.", AllowMultipleArgumentsPerToken = true, DefaultValueFactory = _ => [.. SensorKinds.All] };
var summaryFile = new Option<string?>("--summary-file") { Description = "Write per-device totals as JSON here at the end." };
var keepAlive = new Option<int>("--keep-alive") { Description = "MQTT keep-alive in seconds.", DefaultValueFactory = _ => 30 };
var progress = new Option<string>("--progress") { Description = "auto (live on a terminal, plain lines otherwise), live, plain or none.", DefaultValueFactory = _ => "auto" };
progress.AcceptOnlyFromAmong("auto", "live", "plain", "none");
var progressInterval = new Option<double>("--progress-interval") { Description = "Seconds between plain progress lines.", DefaultValueFactory = _ => 2.0 };
var connectTimeout = new Option<double>("--connect-timeout") { Description = "Seconds each device keeps trying to make its first connection.", DefaultValueFactory = _ => 30.0 };
var queueDir = new Option<string?>("--queue-dir") { Description = "Keep each device's offline queue in a file in this directory: it survives a restart, and a restarted device continues its seq numbers." };
var maxOutstanding = new Option<int>("--max-outstanding") { Description = "Unacknowledged publishes per device before pacing waits.", DefaultValueFactory = _ => 1000 };

var root = new RootCommand("CloudEdge sensor simulator: N devices publishing telemetry over MQTT (devices/{deviceId}/telemetry).")
{
    host, port, tls, caFile, certFile, keyFile, serverName, userName, passwordFile, devices, prefix, firstDevice, rate, qos, protocol,
    duration, count, anomalyRate, seed, kinds, summaryFile, keepAlive, progress, progressInterval, connectTimeout, maxOutstanding, queueDir,
};

root.SetAction(async (parse, cancellationToken) =>
{
    string? passwordPattern;
    try
    {
        passwordPattern = DevicePassword.Read(parse.GetValue(passwordFile), Environment.GetEnvironmentVariable(DevicePassword.EnvironmentVariable));
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
    {
        await Console.Error.WriteLineAsync($"[simulator] {e.Message}");
        return 2;
    }

    var settings = new SimulatorSettings
    {
        Host = parse.GetValue(host)!,
        Port = parse.GetValue(port),
        Tls = parse.GetValue(tls),
        CaFile = parse.GetValue(caFile),
        CertFile = parse.GetValue(certFile),
        KeyFile = parse.GetValue(keyFile),
        ServerName = parse.GetValue(serverName),
        UserNamePattern = parse.GetValue(userName),
        PasswordPattern = passwordPattern,
        Devices = parse.GetValue(devices),
        DevicePrefix = parse.GetValue(prefix)!,
        FirstDevice = parse.GetValue(firstDevice),
        Rate = parse.GetValue(rate),
        QoS = (MqttQualityOfService)parse.GetValue(qos),
        Protocol = parse.GetValue(protocol) == "3.1.1" ? MqttProtocolVersion.V311 : MqttProtocolVersion.V500,
        Duration = parse.GetValue(duration) is { } seconds ? TimeSpan.FromSeconds(seconds) : null,
        Count = parse.GetValue(count),
        AnomalyRate = parse.GetValue(anomalyRate),
        Seed = parse.GetValue(seed) ?? Random.Shared.Next(),
        Kinds = parse.GetValue(kinds)!.SelectMany(k => k.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray(),
        SummaryFile = parse.GetValue(summaryFile),
        KeepAliveSeconds = parse.GetValue(keepAlive),
        Progress = parse.GetValue(progress)!,
        ProgressInterval = TimeSpan.FromSeconds(parse.GetValue(progressInterval)),
        MaxOutstandingPerDevice = parse.GetValue(maxOutstanding),
        ConnectWindow = TimeSpan.FromSeconds(parse.GetValue(connectTimeout)),
        QueueDirectory = parse.GetValue(queueDir),
    };
    Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"[simulator] {settings.Devices} device(s) -> {settings.Host}:{(settings.Port == 0 ? (settings.Tls ? 8883 : 1883) : settings.Port)} MQTT {(settings.Protocol == MqttProtocolVersion.V500 ? "5.0" : "3.1.1")} QoS {(int)settings.QoS}, {settings.Rate}/s each, seed {settings.Seed}"));
    // The device-side publish spans and SDK metrics go over OTLP when the environment names a collector
    // (OTEL_EXPORTER_OTLP_ENDPOINT or Telemetry__OtlpEndpoint; Telemetry/README.md); disposing flushes them.
    OtlpTelemetry telemetry;
    try
    {
        telemetry = OtlpTelemetry.Create(new ConfigurationBuilder().AddEnvironmentVariables().Build(), new TelemetrySettings
        {
            DefaultServiceName = "cloudedge-simulator",
            Sources = [DeviceSdkTelemetry.Name],
            Meters = [DeviceSdkTelemetry.Name],
        });
    }
    catch (InvalidOperationException e)
    {
        await Console.Error.WriteLineAsync(e.Message);
        return 2;
    }

    using (telemetry)
    {
        if (telemetry.Enabled) Console.Out.WriteLine($"[simulator] exporting traces and metrics: {telemetry}");
        return await new Simulation(settings, Console.Out, TimeProvider.System).RunAsync(cancellationToken);
    }
});

var configuration = new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) };
return await root.Parse(args).InvokeAsync(configuration);
