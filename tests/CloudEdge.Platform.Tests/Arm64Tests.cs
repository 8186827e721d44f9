using System.Text.Json.Nodes;
using CloudEdge.Testing.Otlp;
using CloudEdge.Testing.Sse;

namespace CloudEdge.Platform.Tests;

/// <summary>
/// The edge agent as an ARM gateway runs it: <c>dotnet publish EdgeAgent -r linux-arm64 --self-contained</c> (as the
/// Dockerfile does), started under Debian's qemu-aarch64 (with Debian's arm64 glibc, OpenSSL and libstdc++) as a real process with its embedded broker. The x64 simulator
/// publishes to it, it scores on the arm64 ONNX Runtime, journals in the arm64 SQLite and uplinks to an x64 Silo; the
/// alert reaches the Silo's SSE alerts stream carrying the trace the sensor started.
/// </summary>
public sealed class Arm64Tests
{
    [Fact]
    public async Task The_linux_arm64_agent_under_qemu_turns_simulated_readings_into_an_alert_on_the_silos_sse_stream()
    {
        var publish = RepositoryLayout.NewTempDirectory("cloudedge-arm64-agent");
        try
        {
            var project = Path.Combine(RepositoryLayout.Root, "EdgeAgent", "CloudEdge.EdgeAgent.csproj");
            var published = await ExternalProcess.RunAsync("dotnet",
                ["publish", project, "-c", RepositoryLayout.Configuration, "-r", "linux-arm64", "--self-contained", "-o", publish, "-nologo", "-v", "quiet"],
                TimeSpan.FromMinutes(8), RepositoryLayout.Root, new Dictionary<string, string> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1" });
            Assert.True(published.ExitCode == 0, $"dotnet publish -r linux-arm64 exited with {published.ExitCode}\n{published.StdoutText}\n{published.Stderr}");

            // One self-contained folder: the arm64 host, ONNX Runtime and SQLite at its top, no other architecture's.
            var agent = Path.Combine(publish, "CloudEdge.EdgeAgent");
            foreach (var native in new[] { agent, Path.Combine(publish, "libonnxruntime.so"), Path.Combine(publish, "libe_sqlite3.so"), Path.Combine(publish, "libcoreclr.so") })
            {
                Assert.True(File.Exists(native), $"{native} is not in the arm64 publish");
                Assert.Equal(Elf.Aarch64, Elf.Machine(native));
            }
            Assert.False(Directory.Exists(Path.Combine(publish, "runtimes")), "a self-contained publish for one runtime carries no runtimes/ tree");

            await using var otlp = await OtlpReceiver.StartAsync();
            await using var platform = await LocalPlatform.StartAsync(new LocalPlatformOptions
            {
                Devices = 1,
                // The arm64 glibc, OpenSSL and libstdc++ are Debian's multiarch packages at their usual paths, so no
                // QEMU_LD_PREFIX (the cross toolchain's older glibc under /usr/aarch64-linux-gnu would mix with them and
                // hang CoreCLR's start). -E sets the variable for the emulated process only (no arm64 ICU installed).
                AgentCommand = ["qemu-aarch64", "-E", "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1", agent],
                // Every arm64 instruction is emulated: the agent's start takes minutes on a loaded 2-core machine.
                AgentStartTimeout = TimeSpan.FromMinutes(8),
                Environment = new Dictionary<string, string?>
                {
                    ["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp.Endpoint,
                    ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
                },
            });
            Assert.Contains("qemu-aarch64", await File.ReadAllTextAsync($"/proc/{platform.Agent.Process.Id}/cmdline"));
            await using var sse = await SseFollower.OpenAsync(platform.Silo.Url, "api/v1/live/alerts", platform.AdminToken);

            // Enough readings at 5% anomalies (seeded) that spikes land after the model's 32-reading history fills.
            await using (var simulator = SimulatorProcess.Start(platform.Simulator(1) with { Rate = 20, Count = 160, AnomalyRate = 0.05, Seed = 7 }))
            {
                Assert.True(await simulator.WaitForExitAsync(TimeSpan.FromMinutes(8)) == 0, simulator.Output);
            }

            var alert = await sse.WaitForAsync(e => e.Event == "alert", "an alert from the arm64 agent on the Silo's alerts stream\n" + platform.Diagnostics(), TimeSpan.FromMinutes(10));
            var traceId = (string?)alert.Data["traceId"];
            Assert.True(traceId is { Length: 32 }, $"the alert event carries a trace id: {alert.Data.ToJsonString()}");
            Assert.Equal(platform.DeviceIds[0], (string?)(alert.Data["alert"]?["deviceId"] ?? alert.Data["deviceId"]));
            Assert.Equal(traceId, ((string?)alert.Data["alert"]?["traceParent"])?[3..35]);
            // The trace is the sensor's: the simulator's publish span started it.
            await Wait.UntilAsync(() => otlp.Spans.Any(s => s is { ServiceName: "cloudedge-simulator", Name: "publish" } && s.TraceId == traceId),
                $"the simulator's publish span of trace {traceId}\n{platform.Diagnostics()}", TimeSpan.FromMinutes(2));
            Assert.False(platform.Agent.Process.HasExited, platform.Diagnostics());
        }
        finally
        {
            Directory.Delete(publish, recursive: true);
        }
    }
}
