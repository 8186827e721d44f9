using System.Net.Http.Json;
using System.Text.Json;

namespace CloudEdge.Platform.Tests;

public sealed class LocalPlatformTests
{
    [Fact]
    public async Task Simulated_sensors_reach_the_device_twins_through_the_edge_agent_processes()
    {
        await using var platform = await LocalPlatform.StartAsync(new LocalPlatformOptions { Devices = 3, WindowLength = TimeSpan.FromSeconds(1) });
        var simulator = SimulatorProcess.Start(platform.Simulator() with { Rate = 10, Count = 30, AnomalyRate = 0 });
        await using (simulator)
        {
            Assert.True(await simulator.WaitForExitAsync(TimeSpan.FromMinutes(2)) == 0, simulator.Output);
        }

        using var admin = platform.AdminClient();
        foreach (var device in platform.DeviceIds)
        {
            // Every window of readings becomes a summary on the twin.
            await Wait.UntilAsync(async () =>
            {
                using var twin = JsonDocument.Parse(await admin.GetStringAsync($"api/v1/devices/{device}"));
                return twin.RootElement.TryGetProperty("latestSummary", out var summary) && summary.ValueKind == JsonValueKind.Object
                    && summary.GetProperty("count").GetInt64() > 0;
            }, $"a summary for {device}\n{platform.Diagnostics()}", TimeSpan.FromMinutes(2));
        }

        using var gateway = JsonDocument.Parse(await admin.GetStringAsync($"api/v1/gateways/{platform.Options.GatewayId}"));
        Assert.True(gateway.RootElement.GetProperty("health").GetProperty("applied").GetInt64() >= platform.DeviceIds.Count);
        Assert.Equal(0, gateway.RootElement.GetProperty("health").GetProperty("drops").GetProperty("reports").GetInt64());

        // A restart keeps the data: the same twins answer after the Silo comes back.
        platform.Silo.Kill();
        await platform.RestartSiloAsync();
        using var again = platform.AdminClient();
        var twinAfter = await again.GetFromJsonAsync<JsonElement>($"api/v1/devices/{platform.DeviceIds[0]}");
        Assert.Equal(JsonValueKind.Object, twinAfter.GetProperty("latestSummary").ValueKind);
    }
}
