using CloudEdge.DeviceSdk;

namespace CloudEdge.Simulator;

/// <summary>Everything the command line decides; validated by <see cref="Validate"/>.</summary>
internal sealed record SimulatorSettings
{
    public string Host { get; init; } = "127.0.0.1";
    public int Port { get; init; }
    public bool Tls { get; init; }
    public string? CaFile { get; init; }
    public string? CertFile { get; init; }
    public string? KeyFile { get; init; }
    public string? ServerName { get; init; }
    /// <summary>"{deviceId}" is replaced per device.</summary>
    public string? UserNamePattern { get; init; }
    public string? PasswordPattern { get; init; }
    public int Devices { get; init; } = 1;
    public string DevicePrefix { get; init; } = "sim-";
    public int FirstDevice { get; init; } = 1;
    public double Rate { get; init; } = 1;
    public MqttQualityOfService QoS { get; init; } = MqttQualityOfService.AtLeastOnce;
    public MqttProtocolVersion Protocol { get; init; } = MqttProtocolVersion.V500;
    public TimeSpan? Duration { get; init; }
    public long? Count { get; init; }
    public double AnomalyRate { get; init; } = 0.01;
    public int Seed { get; init; }
    public IReadOnlyList<string> Kinds { get; init; } = CloudEdge.DeviceSdk.SensorKinds.All;
    public string? SummaryFile { get; init; }
    public int KeepAliveSeconds { get; init; } = 30;
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>auto (live display on a terminal, plain lines otherwise), live, plain or none.</summary>
    public string Progress { get; init; } = "auto";
    public int MaxOutstandingPerDevice { get; init; } = 1000;
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>How long a device keeps trying to make its first connection before it gives up.</summary>
    public TimeSpan ConnectWindow { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Set: each device's offline queue is durable in this directory (one SQLite file per device).</summary>
    public string? QueueDirectory { get; init; }

    public string DeviceId(int index) => $"{DevicePrefix}{FirstDevice + index:D4}";

    public string Substitute(string pattern, string deviceId) => pattern.Replace("{deviceId}", deviceId, StringComparison.Ordinal);

    public IEnumerable<string> Validate()
    {
        if (Devices < 1) yield return "--devices must be at least 1.";
        if (Rate <= 0 || !double.IsFinite(Rate)) yield return "--rate must be a positive number of readings per second.";
        if (Count is < 1) yield return "--count must be at least 1.";
        if (Duration is { } d && d <= TimeSpan.Zero) yield return "--duration must be positive.";
        if (AnomalyRate is < 0 or > 1) yield return "--anomaly-rate is a probability per reading, between 0 and 1.";
        if (Port is < 0 or > 65535) yield return "--port must be 0-65535.";
        if (KeepAliveSeconds is < 0 or > 65535) yield return "--keep-alive must be 0-65535 seconds.";
        if (Kinds.Count == 0) yield return "--kinds needs at least one kind.";
        foreach (var k in Kinds)
        {
            if (!CloudEdge.DeviceSdk.SensorKinds.IsKnown(k)) yield return $"--kinds: unknown kind '{k}' (temperature, humidity, pressure, vibration).";
        }
        if ((CertFile is null) != (KeyFile is null)) yield return "--cert-file and --key-file go together.";
        if (!Tls && (CaFile ?? CertFile ?? ServerName) is not null) yield return "--ca-file, --cert-file and --server-name need --tls.";
        if (Progress is not ("auto" or "live" or "plain" or "none")) yield return "--progress is auto, live, plain or none.";
        if (ConnectWindow <= TimeSpan.Zero) yield return "--connect-timeout must be positive.";
        if (MaxOutstandingPerDevice < 1) yield return "--max-outstanding must be at least 1.";
        if (QueueDirectory is { Length: 0 }) yield return "--queue-dir needs a directory.";
    }
}
