namespace CloudEdge.Testing.Platform;

/// <summary>What <see cref="LocalPlatform.StartAsync"/> sets up: one gateway with simulator-named devices.</summary>
public sealed record LocalPlatformOptions
{
    public string GatewayId { get; init; } = "gw-1";

    public string OwnerId { get; init; } = "operator";

    /// <summary>Devices <c>sim-0001</c>... registered behind the gateway and given broker credentials.</summary>
    public int Devices { get; init; } = 4;

    public TimeSpan WindowLength { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Extra Silo configuration (<c>--Key value</c>).</summary>
    public IReadOnlyDictionary<string, string> SiloConfiguration { get; init; } = new Dictionary<string, string>();

    /// <summary>Extra edge agent configuration (<c>--Key value</c>); the default sends uplinks promptly.</summary>
    public IReadOnlyDictionary<string, string> AgentConfiguration { get; init; } = new Dictionary<string, string> { ["EdgeAgent:Uplink:BatchDelay"] = "00:00:00.020" };

    /// <summary>Environment for every process started (e.g. OTEL_EXPORTER_OTLP_ENDPOINT).</summary>
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();

    /// <summary>Runs the agent with this command instead of its x64 build (<see cref="EdgeAgentSettings.Command"/>).</summary>
    public IReadOnlyList<string>? AgentCommand { get; init; }

    /// <summary>How long the agent may take until its MQTT port accepts connections (default 2 minutes).</summary>
    public TimeSpan? AgentStartTimeout { get; init; }
}

/// <summary>
/// The platform on loopback, as the main job runs it: the Silo process, one edge agent process and the
/// provisioning between them (owner, devices, broker credentials, tokens). Sensors are added by the test
/// (<see cref="SimulatorSettings"/> from <see cref="Simulator"/>, or its own DeviceSdk client). Each process
/// logs to a file in <see cref="Directory"/>; restarts reuse their data directories.
/// </summary>
public sealed class LocalPlatform : IAsyncDisposable
{
    private LocalPlatform(LocalPlatformOptions options, string directory, string signingKey, string devicePassword)
    {
        Options = options;
        Directory = directory;
        SigningKey = signingKey;
        DevicePassword = devicePassword;
    }

    public LocalPlatformOptions Options { get; }

    /// <summary>The temp folder holding the data directories, credentials files and logs.</summary>
    public string Directory { get; }

    public string SigningKey { get; }

    /// <summary>Every device's broker password (user name = device id).</summary>
    public string DevicePassword { get; }

    public SiloProcess Silo { get; private set; } = null!;

    public EdgeAgentProcess Agent { get; private set; } = null!;

    public string AdminToken { get; private set; } = string.Empty;

    public string GatewayToken { get; private set; } = string.Empty;

    public IReadOnlyList<string> DeviceIds => [.. Enumerable.Range(1, Options.Devices).Select(i => $"sim-{i:D4}")];

    public static async Task<LocalPlatform> StartAsync(LocalPlatformOptions? options = null)
    {
        options ??= new LocalPlatformOptions();
        var platform = new LocalPlatform(
            options,
            RepositoryLayout.NewTempDirectory("cloudedge-platform"),
            "platform-test-key-" + Guid.NewGuid().ToString("N"),
            "pw-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            await platform.StartSiloAsync();
            platform.AdminToken = await platform.Silo.MintTokenAsync("admin", "admin", TimeSpan.FromHours(2));
            platform.GatewayToken = await platform.Silo.MintTokenAsync(options.GatewayId, "gateway", TimeSpan.FromHours(2));
            using (var admin = platform.Silo.Client(platform.AdminToken))
            {
                await Provisioning.RegisterDevicesAsync(admin, options.OwnerId, options.GatewayId, platform.DeviceIds);
            }

            var (users, acl) = await Provisioning.WriteBrokerCredentialsAsync(Path.Combine(platform.Directory, "broker"), platform.DeviceIds, platform.DevicePassword);
            platform.Agent = await EdgeAgentProcess.StartAsync(new EdgeAgentSettings(options.GatewayId, Path.Combine(platform.Directory, "edge"), platform.Silo.Url, platform.GatewayToken, users)
            {
                AclFile = acl,
                WindowLength = options.WindowLength,
                Configuration = options.AgentConfiguration,
                Environment = options.Environment,
                LogFile = Path.Combine(platform.Directory, "edge-agent.log"),
                Command = options.AgentCommand,
            }, options.AgentStartTimeout);
            return platform;
        }
        catch
        {
            await platform.DisposeAsync();
            throw;
        }
    }

    /// <summary>An HttpClient on the Silo as admin.</summary>
    public HttpClient AdminClient() => Silo.Client(AdminToken);

    /// <summary>Simulator settings for this platform's devices (all of them unless told), to adjust with <c>with</c>.</summary>
    public SimulatorSettings Simulator(int? devices = null) => new(Agent.MqttPort, devices ?? Options.Devices, DevicePassword)
    {
        Environment = Options.Environment,
        LogFile = Path.Combine(Directory, "simulator.log"),
        SummaryFile = Path.Combine(Directory, "simulator-summary.json"),
    };

    /// <summary>Starts the Silo again (after a kill or stop) on the same port and data directory.</summary>
    public async Task RestartSiloAsync()
    {
        await Silo.DisposeAsync();
        Silo = await SiloProcess.StartAsync(Silo.Settings);
    }

    /// <summary>Starts the edge agent again (after a kill or stop) on the same port, journal and outbox.</summary>
    public async Task RestartAgentAsync()
    {
        await Agent.DisposeAsync();
        Agent = await EdgeAgentProcess.StartAsync(Agent.Settings);
    }

    /// <summary>The last lines of every process, for a failure message.</summary>
    public string Diagnostics() =>
        $"--- silo ---\n{Silo?.Process.Output}\n--- edge agent ---\n{Agent?.Process.Output}\n(logs in {Directory})";

    public async ValueTask DisposeAsync()
    {
        if (Agent is not null)
        {
            await Agent.DisposeAsync();
        }

        if (Silo is not null)
        {
            await Silo.DisposeAsync();
        }

        // Kept when asked, to read the logs of a failed run.
        if (System.Environment.GetEnvironmentVariable("CLOUDEDGE_KEEP_TEST_DIRS") is not "1")
        {
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task StartSiloAsync()
    {
        Silo = await SiloProcess.StartAsync(new SiloSettings(Path.Combine(Directory, "silo"), SigningKey)
        {
            Configuration = Options.SiloConfiguration,
            Environment = Options.Environment,
            LogFile = Path.Combine(Directory, "silo.log"),
        });
    }
}
