namespace CloudEdge.Testing.Platform;

/// <summary>The simulator's command line (docs/device-sdk.md): which devices, how fast, how anomalous, for how long.</summary>
public sealed record SimulatorSettings(int MqttPort, int Devices, string Password)
{
    public string Host { get; init; } = "127.0.0.1";

    public string DevicePrefix { get; init; } = "sim-";

    public int FirstDevice { get; init; } = 1;

    public double Rate { get; init; } = 5;

    public int Qos { get; init; } = 1;

    /// <summary>"5" or "3.1.1".</summary>
    public string Protocol { get; init; } = "5";

    public double AnomalyRate { get; init; } = 0.05;

    public int Seed { get; init; } = 42;

    /// <summary>Readings per device; null: until <see cref="Duration"/> or a stop.</summary>
    public int? Count { get; init; }

    public TimeSpan? Duration { get; init; }

    /// <summary>Where the simulator writes its per-device totals at the end (JSON).</summary>
    public string? SummaryFile { get; init; }

    /// <summary>Extra flags, as given.</summary>
    public IReadOnlyList<string> ExtraArguments { get; init; } = [];

    /// <summary>Extra environment (e.g. OTEL_EXPORTER_OTLP_ENDPOINT); null removes a variable.</summary>
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();

    public string? LogFile { get; init; }

    /// <summary>The device ids this run uses, as the simulator names them.</summary>
    public IReadOnlyList<string> DeviceIds => [.. Enumerable.Range(FirstDevice, Devices).Select(i => $"{DevicePrefix}{i:D4}")];
}

/// <summary>The real sensor simulator (<c>DeviceSdk/Simulator</c>), one MQTT connection per device, user name = device id.</summary>
public static class SimulatorProcess
{
    public static string Dll => RepositoryLayout.BuiltDll(Path.Combine("DeviceSdk", "Simulator"), "CloudEdge.Simulator");

    public static HostProcess Start(SimulatorSettings settings)
    {
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        List<string> arguments =
        [
            "--host", settings.Host, "--port", settings.MqttPort.ToString(invariant),
            "--devices", settings.Devices.ToString(invariant), "--device-prefix", settings.DevicePrefix,
            "--first-device", settings.FirstDevice.ToString(invariant),
            "--rate", settings.Rate.ToString(invariant), "--qos", settings.Qos.ToString(invariant),
            "--protocol", settings.Protocol, "--anomaly-rate", settings.AnomalyRate.ToString(invariant),
            "--seed", settings.Seed.ToString(invariant),
            "--username", "{deviceId}", "--progress", "none",
        ];
        if (settings.Count is { } count)
        {
            arguments.AddRange(["--count", count.ToString(invariant)]);
        }

        if (settings.Duration is { } duration)
        {
            arguments.AddRange(["--duration", ((int)Math.Ceiling(duration.TotalSeconds)).ToString(invariant)]);
        }

        if (settings.SummaryFile is not null)
        {
            arguments.AddRange(["--summary-file", settings.SummaryFile]);
        }

        arguments.AddRange(settings.ExtraArguments);
        // The password travels in the environment, never on the command line (ps shows that to everyone).
        var environment = new Dictionary<string, string?>(settings.Environment) { ["CLOUDEDGE_DEVICE_PASSWORD"] = settings.Password };
        return HostProcess.Start("simulator", Dll, arguments, environment, settings.LogFile);
    }
}
