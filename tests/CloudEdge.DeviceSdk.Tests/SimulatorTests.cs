using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace CloudEdge.DeviceSdk.Tests;

/// <summary>The simulator as a real process against mosquitto, checked against what a subscriber received.</summary>
public sealed class SimulatorTests
{
    private static string SimulatorDll => Path.Combine(AppContext.BaseDirectory, "CloudEdge.Simulator.dll");

    /// <summary>Every telemetry message a subscriber received, by device.</summary>
    private sealed class TelemetrySink
    {
        public ConcurrentDictionary<string, ConcurrentBag<TelemetryEnvelope>> ByDevice { get; } = new();
        public ConcurrentQueue<string> Topics { get; } = new();

        public ValueTask Handle(MqttMessage m, CancellationToken _)
        {
            var envelope = TelemetryJson.Parse(m.Payload.Span);
            Topics.Enqueue(m.Topic);
            ByDevice.GetOrAdd(envelope.Reading.DeviceId, _ => []).Add(envelope);
            return ValueTask.CompletedTask;
        }

        public int Count(string device) => ByDevice.TryGetValue(device, out var bag) ? bag.Count : 0;
    }

    private static async Task<(MqttClient Client, TelemetrySink Sink)> SubscribeAsync(int port, MqttProtocolVersion version = MqttProtocolVersion.V500, string? user = null, string? password = null)
    {
        var sink = new TelemetrySink();
        var client = new MqttClient(new MqttClientOptions
        {
            Host = "127.0.0.1",
            Tls = MqttTlsOptions.Disabled,
            Port = port,
            ClientId = "edge-" + Guid.NewGuid().ToString("N")[..8],
            ProtocolVersion = version,
            UserName = user,
            Password = password,
            InboxCapacity = 10_000,
        });
        client.MessageHandler = sink.Handle;
        await client.ConnectAsync();
        await client.SubscribeAsync("devices/+/telemetry", MqttQualityOfService.ExactlyOnce);
        return (client, sink);
    }

    private static Process Start(params string[] args) => Start(new Dictionary<string, string>(), args);

    private static Process Start(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        info.ArgumentList.Add(SimulatorDll);
        foreach (var a in args) info.ArgumentList.Add(a);
        // The tests' own environment must not leak a password into runs that test its absence.
        info.Environment.Remove("CLOUDEDGE_DEVICE_PASSWORD");
        foreach (var (name, value) in environment) info.Environment[name] = value;
        return Process.Start(info)!;
    }

    private static async Task<(int Code, string Output, string Error)> RunToEndAsync(Process process)
    {
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"The simulator did not exit.\n{await output}\n{await error}");
        }
        return (process.ExitCode, await output, await error);
    }

    private static JsonElement ReadSummary(string path) => JsonDocument.Parse(File.ReadAllText(path)).RootElement.Clone();

    [Fact]
    public async Task A_counted_run_sends_exactly_what_the_subscriber_receives()
    {
        await using var broker = await Mosquitto.StartAsync();
        var (subscriber, sink) = await SubscribeAsync(broker.Port);
        await using var _ = subscriber;
        var summaryPath = Path.Combine(broker.Directory, "summary.json");
        var prefix = $"t{Guid.NewGuid().ToString("N")[..6]}-";

        using var process = Start("--host", "127.0.0.1", "--port", broker.Port.ToString(), "--devices", "3", "--device-prefix", prefix,
            "--rate", "50", "--count", "40", "--qos", "1", "--seed", "42", "--anomaly-rate", "0.05", "--summary-file", summaryPath, "--progress-interval", "0.2");
        var (code, output, error) = await RunToEndAsync(process);
        Assert.True(code == 0, $"exit {code}\n{output}\n{error}");

        var summary = ReadSummary(summaryPath);
        Assert.False(summary.GetProperty("interrupted").GetBoolean());
        Assert.Equal(120, summary.GetProperty("totals").GetProperty("sent").GetInt64());
        var devices = summary.GetProperty("devices").EnumerateArray().ToList();
        Assert.Equal([$"{prefix}0001", $"{prefix}0002", $"{prefix}0003"], devices.Select(d => d.GetProperty("deviceId").GetString()));
        Assert.Equal(["temperature", "humidity", "pressure"], devices.Select(d => d.GetProperty("kind").GetString()));
        foreach (var d in devices)
        {
            var id = d.GetProperty("deviceId").GetString()!;
            Assert.Equal(40, d.GetProperty("sent").GetInt64());
            Assert.Equal(40, d.GetProperty("acked").GetInt64());
            Assert.Equal(0, d.GetProperty("failed").GetInt64());
            await Wait.UntilAsync(() => sink.Count(id) >= 40, $"40 readings of {id}");
            var received = sink.ByDevice[id].ToList();
            Assert.Equal(Enumerable.Range(1, 40).Select(i => (long)i), received.Select(e => e.Reading.Sequence).Order());
            Assert.All(received, e => Assert.Equal(d.GetProperty("kind").GetString(), e.Reading.Kind));
            // Every reading carried its publish span's context as a v5 user property, not in the JSON.
            Assert.All(received, e => Assert.Null(e.TraceParent));
        }
        Assert.All(sink.Topics, t => Assert.Matches($"^devices/{prefix}000[123]/telemetry$", t));
        Assert.Contains("[simulator] total sent=120 acked=120 failed=0", output);
        Assert.Contains("[simulator] t=", output);
    }

    [Fact]
    public async Task Ctrl_C_stops_cleanly_and_the_summary_matches_what_arrived()
    {
        await using var broker = await Mosquitto.StartAsync();
        var (subscriber, sink) = await SubscribeAsync(broker.Port);
        await using var _ = subscriber;
        var summaryPath = Path.Combine(broker.Directory, "summary.json");
        var prefix = $"c{Guid.NewGuid().ToString("N")[..6]}-";

        using var process = Start("--port", broker.Port.ToString(), "-n", "2", "--device-prefix", prefix, "-r", "20", "-d", "600", "-q", "1", "--summary-file", summaryPath);
        var ended = RunToEndAsync(process);
        await Wait.UntilAsync(() => sink.Count($"{prefix}0001") >= 10 && sink.Count($"{prefix}0002") >= 10, "readings flowing from both devices");
        var (signalled, _, signalError) = await ExternalProcess.RunAsync("kill", ["-INT", process.Id.ToString()], TimeSpan.FromSeconds(10));
        Assert.True(signalled == 0, signalError);
        var (code, output, error) = await ended;
        Assert.True(code == 0, $"exit {code}\n{output}\n{error}");

        var summary = ReadSummary(summaryPath);
        Assert.True(summary.GetProperty("interrupted").GetBoolean());
        foreach (var d in summary.GetProperty("devices").EnumerateArray())
        {
            var id = d.GetProperty("deviceId").GetString()!;
            var sent = d.GetProperty("sent").GetInt64();
            Assert.Equal(sent, d.GetProperty("acked").GetInt64());
            await Wait.UntilAsync(() => sink.Count(id) >= sent, $"{sent} readings of {id}");
            Assert.Equal(Enumerable.Range(1, (int)sent).Select(i => (long)i), sink.ByDevice[id].Select(e => e.Reading.Sequence).Order());
        }
        Assert.Contains("(interrupted)", output);
    }

    [Fact]
    public async Task Per_device_credentials_on_311_at_QoS_2_carry_the_trace_context_in_the_JSON()
    {
        await using var broker = await Mosquitto.StartAsync(s =>
        {
            s.Users["sim-0001"] = "pw-sim-0001";
            s.Users["sim-0002"] = "pw-sim-0002";
            s.Users["edge"] = "edge-pw";
        });
        var (subscriber, sink) = await SubscribeAsync(broker.Port, MqttProtocolVersion.V311, "edge", "edge-pw");
        await using var _ = subscriber;
        var summaryPath = Path.Combine(broker.Directory, "summary.json");

        // The password pattern comes from the environment: never from the command line.
        using var process = Start(new Dictionary<string, string> { ["CLOUDEDGE_DEVICE_PASSWORD"] = "pw-{deviceId}" },
            "--port", broker.Port.ToString(), "-n", "2", "-r", "25", "-c", "15", "-q", "2", "-V", "3.1.1",
            "--username", "{deviceId}", "--kinds", "vibration", "--summary-file", summaryPath, "--progress", "none");
        var (code, output, error) = await RunToEndAsync(process);
        Assert.True(code == 0, $"exit {code}\n{output}\n{error}");

        var summary = ReadSummary(summaryPath);
        Assert.Equal("3.1.1", summary.GetProperty("protocol").GetString());
        Assert.Equal(2, summary.GetProperty("qos").GetInt32());
        Assert.Equal(30, summary.GetProperty("totals").GetProperty("acked").GetInt64());
        foreach (var id in new[] { "sim-0001", "sim-0002" })
        {
            await Wait.UntilAsync(() => sink.Count(id) >= 15, $"15 readings of {id}");
            var received = sink.ByDevice[id].ToList();
            Assert.Equal(15, received.Count);
            Assert.All(received, e =>
            {
                Assert.Equal("vibration", e.Reading.Kind);
                Assert.Equal("mm/s", e.Reading.Unit);
                // Any flags: W3C Trace Context level 2 adds the random-trace-id bit (02), which .NET sets on unsampled roots.
                Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$", e.TraceParent!);
            });
        }
    }

    [Fact]
    public async Task The_password_comes_from_a_file_and_never_from_the_command_line()
    {
        await using var broker = await Mosquitto.StartAsync(s =>
        {
            s.Users["sim-0001"] = "pw-sim-0001";
            s.Users["edge"] = "edge-pw";
        });
        var (subscriber, sink) = await SubscribeAsync(broker.Port, MqttProtocolVersion.V500, "edge", "edge-pw");
        await using var _ = subscriber;
        var passwordFile = Path.Combine(broker.Directory, "device.secret");
        await File.WriteAllTextAsync(passwordFile, "pw-{deviceId}\n");

        using var fromFile = Start("--port", broker.Port.ToString(), "-n", "1", "-r", "50", "-c", "5",
            "--username", "{deviceId}", "--password-file", passwordFile, "--progress", "none");
        var (code, output, error) = await RunToEndAsync(fromFile);
        Assert.True(code == 0, $"exit {code}\n{output}\n{error}");
        await Wait.UntilAsync(() => sink.Count("sim-0001") >= 5, "5 readings of sim-0001");

        // A wrong password from the file is refused by the broker: the file's content is what is sent.
        var wrongFile = Path.Combine(broker.Directory, "wrong.secret");
        await File.WriteAllTextAsync(wrongFile, "not-the-password");
        using var wrong = Start("--port", broker.Port.ToString(), "-n", "1", "-c", "1", "--connect-timeout", "2",
            "--username", "{deviceId}", "--password-file", wrongFile, "--progress", "none");
        var (wrongCode, _, _) = await RunToEndAsync(wrong);
        Assert.NotEqual(0, wrongCode);

        using var missing = Start("--port", broker.Port.ToString(), "-c", "1", "--password-file", Path.Combine(broker.Directory, "none"));
        var (missingCode, _, missingError) = await RunToEndAsync(missing);
        Assert.Equal(2, missingCode);
        Assert.Contains("does not exist", missingError);

        var empty = Path.Combine(broker.Directory, "empty.secret");
        await File.WriteAllTextAsync(empty, "");
        using var emptyRun = Start("--port", broker.Port.ToString(), "-c", "1", "--password-file", empty);
        var (emptyCode, _, emptyError) = await RunToEndAsync(emptyRun);
        Assert.Equal(2, emptyCode);
        Assert.Contains("is empty", emptyError);

        using var onCommandLine = Start("--port", broker.Port.ToString(), "-c", "1", "--password", "pw-{deviceId}");
        var (lineCode, _, lineError) = await RunToEndAsync(onCommandLine);
        Assert.NotEqual(0, lineCode);
        Assert.Contains("--password", lineError);
    }

    [Fact]
    public async Task Bad_arguments_are_refused_with_a_message()
    {
        using var zero = Start("--devices", "0", "--count", "1");
        var (code, _, error) = await RunToEndAsync(zero);
        Assert.Equal(2, code);
        Assert.Contains("--devices must be at least 1", error);

        using var badQos = Start("--qos", "3");
        var (code2, _, error2) = await RunToEndAsync(badQos);
        Assert.NotEqual(0, code2);
        Assert.Contains("3", error2);

        using var badKind = Start("--kinds", "light", "--count", "1");
        var (code3, _, error3) = await RunToEndAsync(badKind);
        Assert.Equal(2, code3);
        Assert.Contains("unknown kind 'light'", error3);
    }

    [Fact]
    public async Task Without_a_broker_devices_give_up_after_the_connect_timeout_and_the_summary_says_why()
    {
        var directory = Directory.CreateTempSubdirectory("cloudedge-sim-");
        try
        {
            var summaryPath = Path.Combine(directory.FullName, "summary.json");
            using var process = Start("--port", Mosquitto.FreePort().ToString(), "-n", "2", "-c", "5", "--connect-timeout", "2", "--summary-file", summaryPath);
            var (code, output, error) = await RunToEndAsync(process);
            Assert.True(code == 1, $"exit {code}\n{output}\n{error}");
            var devices = ReadSummary(summaryPath).GetProperty("devices").EnumerateArray().ToList();
            Assert.Equal(2, devices.Count);
            Assert.All(devices, d =>
            {
                Assert.Equal(0, d.GetProperty("sent").GetInt64());
                Assert.Contains("Could not connect", d.GetProperty("connectError").GetString());
            });
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_sensor_model_is_deterministic_noisy_and_injects_each_anomaly_kind()
    {
        var at = new DateTimeOffset(2026, 11, 21, 0, 0, 0, TimeSpan.Zero);
        var a = new CloudEdge.Simulator.SensorModel("temperature", 0.05, 7);
        var b = new CloudEdge.Simulator.SensorModel("temperature", 0.05, 7);
        var values = new List<double>();
        var anomalies = new List<CloudEdge.Simulator.AnomalyKind>();
        for (var i = 0; i < 5000; i++)
        {
            var t = at.AddSeconds(i * 10);
            var (v, anomaly) = a.Next(t);
            Assert.Equal((v, anomaly), b.Next(t));
            values.Add(v);
            if (anomaly is { } k) anomalies.Add(k);
        }
        Assert.InRange(anomalies.Count, 100, 400);
        Assert.Equal(3, anomalies.Distinct().Count());
        Assert.True(values.Distinct().Count() > 1000, "noise makes most values distinct");
        Assert.All(values, v => Assert.InRange(v, -40, 85));
    }
}
