using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using CloudEdge.Testing.Otlp;

namespace CloudEdge.Platform.Tests;

/// <summary>
/// docker-compose.yml and the Dockerfiles, checked without a Docker engine: Debian's docker-compose normalizes
/// the file (and refuses it without the secrets), every build file, target and COPY source exists, the
/// Dockerfiles' build steps run natively (the edge agent for arm64 carries the arm64 ONNX Runtime), and the
/// compose services run as native processes with exactly the settings the file gives them.
/// </summary>
public sealed class ComposeTests
{
    private static readonly string[] Services = ["postgres", "silo1", "silo2", "silo3", "provision", "edge-agent", "simulator", "otel-collector", "jaeger"];

    [Fact]
    public async Task Compose_config_normalizes_the_file_into_the_documented_topology()
    {
        var config = await ComposeConfig.LoadAsync();

        Assert.Equal(Services.Order(), config.Services.Select(s => s.Name).Order());
        Assert.Equal(5080, config.PublishedPort("silo1", 8080));
        Assert.Equal(1883, config.PublishedPort("edge-agent", 1883));
        Assert.Equal(16686, config.PublishedPort("jaeger", 16686));
        // The telemetry services have no authentication: their ports are for this machine only.
        Assert.Equal("127.0.0.1", config.PublishedHostIp("jaeger", 16686));
        Assert.Equal("127.0.0.1", config.PublishedHostIp("otel-collector", 4317));
        Assert.Equal("127.0.0.1", config.PublishedHostIp("otel-collector", 4318));

        // One cluster on PostgreSQL (membership, state, reminders, streams); each Silo keeps its own model blob volume.
        var siloVolumes = new[] { "silo1", "silo2", "silo3" }.Select(s => config.Service(s).GetProperty("volumes")[0].GetString()!.Split(':')[0]).ToList();
        Assert.Equal(3, siloVolumes.Distinct().Count());
        foreach (var silo in new[] { "silo1", "silo2", "silo3" })
        {
            Assert.StartsWith("Host=postgres;", config.Service(silo).GetProperty("environment").GetProperty("Silo__Postgres").GetString(), StringComparison.Ordinal);
            Assert.Equal("service_healthy", config.Service(silo).GetProperty("depends_on").GetProperty("postgres").GetProperty("condition").GetString());
        }

        // The edge agent starts only after provisioning finished, and reads what provisioning wrote.
        var edgeDependsOn = config.Service("edge-agent").GetProperty("depends_on");
        Assert.Equal("service_completed_successfully", edgeDependsOn.GetProperty("provision").GetProperty("condition").GetString());
        Assert.Equal("service_healthy", config.Service("provision").GetProperty("depends_on").GetProperty("silo1").GetProperty("condition").GetString());
        var edgeConfigVolume = config.Service("provision").GetProperty("volumes")[0].GetString()!.Split(':');
        Assert.Contains(config.Service("edge-agent").GetProperty("volumes").EnumerateArray(), v => v.GetString()!.StartsWith($"{edgeConfigVolume[0]}:{edgeConfigVolume[1]}", StringComparison.Ordinal));

        // Every host of ours exports OTLP to the collector, whose config sends traces to Jaeger.
        foreach (var service in new[] { "silo1", "silo2", "silo3", "edge-agent", "simulator" })
        {
            Assert.Equal("http://otel-collector:4318/", config.Environment(service)["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        }

        var collector = await File.ReadAllTextAsync(Path.Combine(RepositoryLayout.Root, "deploy", "otel-collector.yaml"));
        Assert.Contains("endpoint: jaeger:4317", collector, StringComparison.Ordinal);
        Assert.Contains(config.Service("otel-collector").GetProperty("volumes").EnumerateArray(), v => v.GetString()!.EndsWith("deploy/otel-collector.yaml:/etc/otelcol-contrib/config.yaml:ro", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Every_build_names_an_existing_Dockerfile_target_and_existing_COPY_sources()
    {
        var config = await ComposeConfig.LoadAsync();
        var built = config.Services.Where(s => s.Definition.TryGetProperty("build", out _)).ToList();
        Assert.Equal(["edge-agent", "provision", "silo1", "silo2", "silo3", "simulator"], built.Select(s => s.Name).Order());

        foreach (var (name, definition) in built)
        {
            var build = definition.GetProperty("build");
            var context = build.GetProperty("context").GetString()!;
            Assert.Equal(RepositoryLayout.Root, context.TrimEnd('/'));
            var dockerfile = Dockerfile.Read(Path.Combine(context, build.GetProperty("dockerfile").GetString()!));

            var target = build.TryGetProperty("target", out var t) ? t.GetString()! : dockerfile.Stages[^1].Name;
            var stage = Assert.Single(dockerfile.Stages, s => s.Name == target);
            // The image a service runs is a .NET runtime image (glibc, as ONNX Runtime needs), as a non-root user.
            Assert.Matches(@"^mcr\.microsoft\.com/dotnet/(aspnet|runtime|runtime-deps):10\.0$", stage.BaseImage);
            Assert.Contains(stage.Instructions, i => i == "USER $APP_UID");

            foreach (var source in dockerfile.CopySources())
            {
                Assert.True(File.Exists(Path.Combine(context, source)) || Directory.Exists(Path.Combine(context, source)),
                    $"{name}: COPY source '{source}' of {dockerfile.Path} does not exist");
            }

            // Multi-arch: the SDK stage runs on the build machine and publishes for the target architecture.
            var sdk = Assert.Single(dockerfile.Stages, s => s.BaseImage == "mcr.microsoft.com/dotnet/sdk:10.0");
            Assert.Equal("$BUILDPLATFORM", sdk.Platform);
            Assert.All(sdk.Commands("dotnet publish"), c => Assert.Contains("-a $TARGETARCH", c, StringComparison.Ordinal));
            foreach (var project in sdk.Commands("dotnet publish").Select(c => c.Split(' ')[2]))
            {
                Assert.True(File.Exists(Path.Combine(context, project)), $"{name}: {dockerfile.Path} publishes {project}, which does not exist");
            }
        }

        // Health checks where the host can be asked.
        Assert.Contains(Dockerfile.Read(Path.Combine(RepositoryLayout.Root, "Silo", "Dockerfile")).Stages[^1].Instructions, i => i.StartsWith("HEALTHCHECK", StringComparison.Ordinal) && i.Contains("/health/ready", StringComparison.Ordinal));
        Assert.Contains(Dockerfile.Read(Path.Combine(RepositoryLayout.Root, "EdgeAgent", "Dockerfile")).Stages[^1].Instructions, i => i.StartsWith("HEALTHCHECK", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Compose_refuses_to_run_without_the_secrets_and_no_secret_is_committed()
    {
        // With only the committed example (empty secrets), the required variables stop docker-compose.
        var example = Path.Combine(RepositoryLayout.Root, "deploy", ".env.example");
        var refused = await ComposeConfig.RunAsync(new Dictionary<string, string>(), "--env-file", example);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("CLOUDEDGE_", refused.Stderr, StringComparison.Ordinal);

        var exampleValues = (await File.ReadAllLinesAsync(example))
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split('=', 2))
            .ToDictionary(p => p[0], p => p[1]);
        Assert.Equal(["CLOUDEDGE_DEVICE_PASSWORD", "CLOUDEDGE_POSTGRES_PASSWORD", "CLOUDEDGE_SIGNING_KEY"], exampleValues.Keys.Order());
        Assert.All(exampleValues.Values, v => Assert.Equal(string.Empty, v));

        // Every secret in the compose file is a required variable, never a literal.
        var compose = await File.ReadAllTextAsync(Path.Combine(RepositoryLayout.Root, "docker-compose.yml"));
        foreach (Match m in Regex.Matches(compose, @"^\s*(Auth__SigningKey|POSTGRES_PASSWORD|CLOUDEDGE_DEVICE_PASSWORD)[:=]\s*(.*)$", RegexOptions.Multiline))
        {
            Assert.Matches(@"^\$\{CLOUDEDGE_[A-Z_]+:\?[^}]+\}$", m.Groups[2].Value.Trim());
        }

        // No secret on a command line: a process's arguments are visible to every user of the machine.
        Assert.DoesNotMatch(@"--password(=|\s)", compose);

        // The filled-in env file stays out of git and out of the build context.
        Assert.Contains(".env", await File.ReadAllLinesAsync(Path.Combine(RepositoryLayout.Root, "deploy", ".gitignore")));
        Assert.Contains("deploy/.env", await File.ReadAllLinesAsync(Path.Combine(RepositoryLayout.Root, ".dockerignore")));
    }

    [Theory]
    [InlineData("EdgeAgent/Dockerfile", "arm64")]
    [InlineData("EdgeAgent/Dockerfile", "amd64")]
    [InlineData("Silo/Dockerfile", "arm64")]
    [InlineData("DeviceSdk/Simulator/Dockerfile", "arm64")]
    public async Task The_Dockerfile_build_steps_publish_natively_for_the_target_architecture(string file, string targetArch)
    {
        // The SDK stage's RUN steps, run natively on a copy of the build context (sources only, as .dockerignore
        // leaves them) with Docker's TARGETARCH. What other stages hand in stands in from this machine: the npm
        // packages the build restored from the same lock file, and the ONNX Runtime cache tools/install-deps.sh
        // filled with the same script and pins.
        var dockerfile = Dockerfile.Read(Path.Combine(RepositoryLayout.Root, file));
        var sdk = Assert.Single(dockerfile.Stages, s => s.BaseImage == "mcr.microsoft.com/dotnet/sdk:10.0");
        var work = RepositoryLayout.NewTempDirectory("cloudedge-docker-build");
        try
        {
            var context = Path.Combine(work, "src");
            CopyTree(RepositoryLayout.Root, context, skipBuildOutputs: true);
            foreach (var copy in sdk.Instructions.Where(i => i.StartsWith("COPY --from=", StringComparison.Ordinal)))
            {
                var destination = copy.Split(' ')[^1];
                if (!destination.StartsWith('/'))
                {
                    Assert.True(Directory.Exists(Path.Combine(RepositoryLayout.Root, destination)), $"{destination} stands in for '{copy}' and is made by the build: build the solution first");
                    CopyTree(Path.Combine(RepositoryLayout.Root, destination), Path.Combine(context, destination), skipBuildOutputs: false);
                }
            }

            var output = Path.Combine(work, "out");
            foreach (var run in sdk.Instructions.Where(i => i.StartsWith("RUN ", StringComparison.Ordinal)))
            {
                var script = Regex.Replace(run["RUN ".Length..], @"--mount=\S+\s*", string.Empty).Replace("/out/", output + "/", StringComparison.Ordinal);
                var result = await ExternalProcess.RunAsync("bash", ["-euo", "pipefail", "-c", script], TimeSpan.FromMinutes(8), context,
                    new Dictionary<string, string> { ["TARGETARCH"] = targetArch, ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" });
                Assert.True(result.ExitCode == 0, $"{script}\nexited with {result.ExitCode}\n{result.StdoutText}\n{result.Stderr}");
            }

            // What the final stages copy from the build stage exists, and every native library in it is the target's.
            var machine = targetArch == "arm64" ? Elf.Aarch64 : Elf.X64;
            var taken = dockerfile.Stages.SelectMany(s => s.Instructions)
                .Where(i => i.StartsWith($"COPY --from={sdk.Name} ", StringComparison.Ordinal))
                .Select(i => i.Split(' ')[2]).Distinct().ToList();
            Assert.NotEmpty(taken);
            foreach (var folder in taken.Select(t => output + t["/out".Length..]))
            {
                Assert.True(File.Exists(Path.Combine(folder, Path.GetFileName(folder) switch
                {
                    "silo" => "CloudEdge.Silo.dll", "broker-host" => "CloudEdge.Mqtt.BrokerHost.dll",
                    "edge-agent" => "CloudEdge.EdgeAgent.dll", "simulator" => "CloudEdge.Simulator.dll", var other => other,
                })), $"{folder} lacks its host assembly");
                var natives = Directory.EnumerateFiles(folder, "*.so*", SearchOption.AllDirectories).ToList();
                Assert.All(natives, n => Assert.True(Elf.Machine(n) == machine, $"{n} is not built for {targetArch}"));
            }

            if (file.StartsWith("EdgeAgent", StringComparison.Ordinal))
            {
                // Self-contained for the target (as docs/edge-agent.md publishes for a gateway): its own host, and
                // Microsoft.ML.OnnxRuntime's library for that architecture beside it, no runtimes/ tree for others.
                var published = Path.Combine(output, "edge-agent");
                Assert.False(Directory.Exists(Path.Combine(published, "runtimes")), $"{published} carries a runtimes/ tree");
                Assert.Equal(machine, Elf.Machine(Path.Combine(published, "CloudEdge.EdgeAgent")));
                Assert.Equal(machine, Elf.Machine(Path.Combine(published, "libonnxruntime.so")));
                Assert.Equal(machine, Elf.Machine(Path.Combine(published, "libcoreclr.so")));
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [Fact]
    public async Task The_compose_services_work_as_native_processes_with_the_settings_the_file_gives_them()
    {
        var config = await ComposeConfig.LoadAsync(new Dictionary<string, string>
        {
            ["CLOUDEDGE_DEVICES"] = "3", ["CLOUDEDGE_RATE"] = "10", ["CLOUDEDGE_WINDOW"] = "00:00:01",
        });
        var work = RepositoryLayout.NewTempDirectory("cloudedge-compose-native");
        await using var otlp = await OtlpReceiver.StartAsync();
        try
        {
            // Container paths and service names become temp folders and loopback addresses; nothing else changes.
            var siloData = Path.Combine(work, "silo");
            var edgeConfig = Directory.CreateDirectory(Path.Combine(work, "edge-config")).FullName;
            var edgeData = Path.Combine(work, "edge-data");
            var mqttPort = RepositoryLayout.FreePort();
            Dictionary<string, string> paths = new()
            {
                ["/var/lib/cloudedge/silo"] = siloData, ["/etc/cloudedge/edge"] = edgeConfig, ["/var/lib/cloudedge/edge"] = edgeData,
                ["/var/lib/cloudedge/simulator"] = work, ["http://otel-collector:4318/"] = otlp.Endpoint,
            };

            var siloEnvironment = config.Environment("silo1", paths);
            await using var silo = await SiloProcess.StartAsync(new SiloSettings(siloData, siloEnvironment["Auth__SigningKey"]!)
            {
                Environment = siloEnvironment, LogFile = Path.Combine(work, "silo.log"),
            });
            paths["http://silo1:8080"] = silo.Url.TrimEnd('/');
            await AssertHealthCheckPassesAsync("Silo/Dockerfile", 8080, silo.Port);

            // Provisioning, twice: the second run (every `docker-compose up`) must succeed on the same Silo.
            var provision = config.Environment("provision", paths);
            provision["CLOUDEDGE_SILO_DLL"] = SiloProcess.Dll;
            provision["CLOUDEDGE_BROKER_HOST_DLL"] = RepositoryLayout.BuiltDll(Path.Combine("Mqtt", "BrokerHost"), "CloudEdge.Mqtt.BrokerHost");
            provision["CLOUDEDGE_EDGE_CONFIG"] = edgeConfig;
            for (var run = 0; run < 2; run++)
            {
                var result = await ExternalProcess.RunAsync("bash", [Path.Combine(RepositoryLayout.Root, "deploy", "provision.sh")], TimeSpan.FromMinutes(5),
                    environment: provision.Where(e => e.Value is not null).ToDictionary(e => e.Key, e => e.Value!));
                Assert.True(result.ExitCode == 0, $"provision run {run + 1} exited with {result.ExitCode}\n{result.StdoutText}\n{result.Stderr}");
                Assert.DoesNotContain(provision["CLOUDEDGE_DEVICE_PASSWORD"]!, result.StdoutText + result.Stderr, StringComparison.Ordinal);
            }

            Assert.Equal(3, (await File.ReadAllLinesAsync(Path.Combine(edgeConfig, "users.txt"))).Length);

            var agentEnvironment = config.Environment("edge-agent", paths);
            agentEnvironment["EdgeAgent__Broker__ListenAddress"] = "127.0.0.1";
            agentEnvironment["EdgeAgent__Broker__TcpPort"] = mqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await using var agent = HostProcess.Start("edge-agent", EdgeAgentProcess.Dll, [], agentEnvironment, Path.Combine(work, "edge-agent.log"));
            await agent.WaitUntilAsync(() => Task.FromResult(Accepts(mqttPort)), "the MQTT port to accept connections");
            await AssertHealthCheckPassesAsync("EdgeAgent/Dockerfile", 1883, mqttPort);

            var arguments = config.Command("simulator")
                .Select(a => a.Replace("--host=edge-agent", "--host=127.0.0.1", StringComparison.Ordinal)
                              .Replace("--port=1883", $"--port={mqttPort}", StringComparison.Ordinal)
                              .Replace("/var/lib/cloudedge/simulator", work, StringComparison.Ordinal))
                .Append("--count=20").ToList();
            await using (var simulator = HostProcess.Start("simulator", SimulatorProcess.Dll, arguments, config.Environment("simulator", paths), Path.Combine(work, "simulator.log")))
            {
                Assert.True(await simulator.WaitForExitAsync(TimeSpan.FromMinutes(2)) == 0, simulator.Output);
            }

            using var summary = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(work, "summary.json")));
            Assert.Equal(60, summary.RootElement.GetProperty("totals").GetProperty("acked").GetInt32());

            // The readings went through the agent (users file, ACL) and up to silo1 (URL, token file).
            using var admin = silo.Client(await silo.MintTokenAsync("admin", "admin"));
            foreach (var device in new[] { "sim-0001", "sim-0002", "sim-0003" })
            {
                await Wait.UntilAsync(async () =>
                {
                    using var twin = JsonDocument.Parse(await admin.GetStringAsync($"api/v1/devices/{device}"));
                    return twin.RootElement.TryGetProperty("latestSummary", out var s) && s.ValueKind == JsonValueKind.Object;
                }, $"a window summary of {device} on silo1\n{agent.Output}", TimeSpan.FromMinutes(2));
            }

            // Every process exported traces under the service name the file gives it.
            string[] names = ["cloudedge-silo1", "cloudedge-edge-agent", "cloudedge-simulator"];
            await Wait.UntilAsync(() => names.All(n => otlp.Spans.Any(s => s.ServiceName == n)),
                $"OTLP traces from {string.Join(", ", names)}; got {string.Join(", ", otlp.Spans.Select(s => s.ServiceName).Distinct())}", TimeSpan.FromMinutes(2));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Runs the final stage's HEALTHCHECK command here, against the native process on <paramref name="port"/>.</summary>
    private static async Task AssertHealthCheckPassesAsync(string file, int imagePort, int port)
    {
        var healthCheck = Assert.Single(Dockerfile.Read(Path.Combine(RepositoryLayout.Root, file)).Stages[^1].Instructions, i => i.StartsWith("HEALTHCHECK ", StringComparison.Ordinal));
        var command = JsonSerializer.Deserialize<string[]>(healthCheck[(healthCheck.IndexOf(" CMD ", StringComparison.Ordinal) + " CMD ".Length)..])!;
        var portText = imagePort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var arguments = command[1..].Select(a => a.Replace($"/127.0.0.1/{portText}", $"/127.0.0.1/{port}", StringComparison.Ordinal)).ToList();
        Assert.Contains(arguments, a => a.Contains($"/127.0.0.1/{port}", StringComparison.Ordinal));
        var result = await ExternalProcess.RunAsync(command[0], arguments, TimeSpan.FromSeconds(30));
        Assert.True(result.ExitCode == 0, $"{file} HEALTHCHECK exited with {result.ExitCode}: {result.Stderr}");
    }

    private static bool Accepts(int port)
    {
        try
        {
            using var client = new System.Net.Sockets.TcpClient();
            client.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    /// <summary>A folder tree; with <paramref name="skipBuildOutputs"/> without build outputs, local state or git (what .dockerignore leaves).</summary>
    private static void CopyTree(string from, string to, bool skipBuildOutputs)
    {
        string[] skipped = skipBuildOutputs ? ["bin", "obj", ".git", "artifacts", "node_modules", "TestResults", "BenchmarkDotNet.Artifacts", ".vs"] : [];
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }

        foreach (var directory in Directory.EnumerateDirectories(from).Where(d => !skipped.Contains(Path.GetFileName(d))))
        {
            CopyTree(directory, Path.Combine(to, Path.GetFileName(directory)), skipBuildOutputs);
        }
    }
}

/// <summary>The output of <c>docker-compose config</c> (Debian's 1.29), as JSON through python3-yaml.</summary>
internal sealed class ComposeConfig(JsonElement root)
{
    /// <summary>Test values for the required secrets: docker-compose refuses the file without them.</summary>
    public static readonly IReadOnlyDictionary<string, string> Secrets = new Dictionary<string, string>
    {
        ["CLOUDEDGE_SIGNING_KEY"] = "compose-test-signing-key-" + Guid.NewGuid().ToString("N"),
        ["CLOUDEDGE_DEVICE_PASSWORD"] = "compose-test-device-" + Guid.NewGuid().ToString("N")[..12],
        ["CLOUDEDGE_POSTGRES_PASSWORD"] = "compose-test-postgres",
    };

    public IEnumerable<(string Name, JsonElement Definition)> Services =>
        root.GetProperty("services").EnumerateObject().Select(p => (p.Name, p.Value));

    public JsonElement Service(string name) => root.GetProperty("services").GetProperty(name);

    public static async Task<ComposeConfig> LoadAsync(IReadOnlyDictionary<string, string>? settings = null)
    {
        var environment = Secrets.Concat(settings ?? new Dictionary<string, string>()).ToDictionary();
        var result = await RunAsync(environment);
        Assert.True(result.ExitCode == 0, $"docker-compose config exited with {result.ExitCode}: {result.Stderr}");
        var normalized = Path.GetTempFileName();
        try
        {
            await File.WriteAllBytesAsync(normalized, result.Stdout);
            var json = await ExternalProcess.RunAsync("python3",
                ["-c", "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)", normalized], TimeSpan.FromSeconds(60));
            Assert.True(json.ExitCode == 0, json.Stderr);
            return new ComposeConfig(JsonDocument.Parse(json.Stdout).RootElement.Clone());
        }
        finally
        {
            File.Delete(normalized);
        }
    }

    /// <summary>Runs <c>docker-compose -f docker-compose.yml [extra] config</c> in the repository root with only the given CLOUDEDGE_* variables.</summary>
    public static Task<ProcessResult> RunAsync(IReadOnlyDictionary<string, string> environment, params string[] extra)
    {
        // Variables of the developer's shell must not fill in what the test leaves unset.
        var unset = System.Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(k => k.StartsWith("CLOUDEDGE_", StringComparison.Ordinal) && !environment.ContainsKey(k));
        List<string> arguments = [.. unset.SelectMany(k => new[] { "-u", k }), "docker-compose", .. extra, "-f", "docker-compose.yml", "config"];
        return ExternalProcess.RunAsync("env", arguments, TimeSpan.FromMinutes(2), RepositoryLayout.Root, environment);
    }

    public int PublishedPort(string service, int target) => Ports(service).Single(p => p.Target == target).Published;

    /// <summary>The host address a published port is bound to; null when it is bound to every interface.</summary>
    public string? PublishedHostIp(string service, int target) => Ports(service).Single(p => p.Target == target).HostIp;

    /// <summary>
    /// A service's published ports. Compose v2 normalizes each to an object; docker-compose 1.29 writes one bound to
    /// an address as the string <c>ip:published:target/protocol</c>.
    /// </summary>
    private IEnumerable<(string? HostIp, int Published, int Target)> Ports(string service)
    {
        foreach (var port in Service(service).GetProperty("ports").EnumerateArray())
        {
            if (port.ValueKind == JsonValueKind.Object)
            {
                yield return (port.TryGetProperty("host_ip", out var ip) ? ip.GetString() : null,
                    int.Parse(port.GetProperty("published").ToString(), CultureInfo.InvariantCulture), port.GetProperty("target").GetInt32());
                continue;
            }

            var parts = port.GetString()!.Split('/')[0].Split(':');
            yield return (parts.Length == 3 ? parts[0] : null,
                int.Parse(parts[^2], CultureInfo.InvariantCulture), int.Parse(parts[^1], CultureInfo.InvariantCulture));
        }
    }

    /// <summary>A service's environment, with each value that starts with a key of <paramref name="replacements"/> rewritten.</summary>
    public Dictionary<string, string?> Environment(string service, IReadOnlyDictionary<string, string>? replacements = null)
    {
        var environment = new Dictionary<string, string?>();
        foreach (var variable in Service(service).GetProperty("environment").EnumerateObject())
        {
            var value = variable.Value.ToString();
            foreach (var (from, to) in replacements ?? new Dictionary<string, string>())
            {
                if (value.StartsWith(from, StringComparison.Ordinal))
                {
                    value = to + value[from.Length..];
                }
            }

            environment[variable.Name] = value;
        }

        return environment;
    }

    public IReadOnlyList<string> Command(string service) =>
        [.. Service(service).GetProperty("command").EnumerateArray().Select(a => a.GetString()!)];
}

/// <summary>A Dockerfile read into stages (continuation lines joined, comments dropped): just enough to check it.</summary>
internal sealed record Dockerfile(string Path, IReadOnlyList<DockerfileStage> Stages)
{
    public static Dockerfile Read(string path)
    {
        Assert.True(File.Exists(path), $"{path} does not exist");
        var instructions = new List<string>();
        var current = new StringBuilder();
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.StartsWith('#') || (line.Length == 0 && current.Length == 0))
            {
                continue;
            }

            current.Append(line.TrimEnd('\\').Trim()).Append(' ');
            if (!line.EndsWith('\\'))
            {
                instructions.Add(Regex.Replace(current.ToString().Trim(), @"\s+", " "));
                current.Clear();
            }
        }

        var stages = new List<DockerfileStage>();
        foreach (var instruction in instructions)
        {
            var from = Regex.Match(instruction, @"^FROM (?:--platform=(\S+) )?(\S+)(?: AS (\S+))?$", RegexOptions.IgnoreCase);
            if (from.Success)
            {
                stages.Add(new DockerfileStage(from.Groups[3].Value, from.Groups[2].Value, from.Groups[1].Value, []));
            }
            else if (stages.Count > 0)
            {
                stages[^1].Instructions.Add(instruction);
            }
        }

        return new Dockerfile(path, stages);
    }

    /// <summary>The build-context paths COPY takes (not those copied from another stage).</summary>
    public IEnumerable<string> CopySources() =>
        Stages.SelectMany(s => s.Instructions)
            .Where(i => i.StartsWith("COPY ", StringComparison.Ordinal) && !i.Contains("--from=", StringComparison.Ordinal))
            .SelectMany(i => i.Split(' ')[1..^1].Where(a => !a.StartsWith("--", StringComparison.Ordinal)));
}

internal sealed record DockerfileStage(string Name, string BaseImage, string Platform, List<string> Instructions)
{
    /// <summary>The shell commands of the RUN instructions that start with <paramref name="prefix"/>, split at &amp;&amp;.</summary>
    public IEnumerable<string> Commands(string prefix) =>
        Instructions.Where(i => i.StartsWith("RUN ", StringComparison.Ordinal))
            .SelectMany(i => i["RUN ".Length..].Split("&&"))
            .Select(c => Regex.Replace(c, @"--mount=\S+\s*", string.Empty).Trim())
            .Where(c => c.StartsWith(prefix, StringComparison.Ordinal));
}
