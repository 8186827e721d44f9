using System.Net;
using CloudEdge.Grains;
using CloudEdge.Silo.Auth;
using Microsoft.Extensions.Time.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.Silo.Tests;

/// <summary>A device goes offline after a silence, on a controlled clock.</summary>
public sealed class PresenceTests
{
    [Fact]
    public async Task A_device_goes_offline_after_the_configured_silence()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var silo = await TestSilo.StartAsync(
            settings: new Dictionary<string, string> { ["Devices:OfflineAfter"] = "00:01:00" },
            services: s => s.AddSingleton<TimeProvider>(clock));
        var gatewayId = Ids.New("gw");
        var deviceId = Ids.New("dev");
        await EdgeHttp.RegisterDevice(silo, deviceId, gatewayId);
        var gateway = silo.Gateway(gatewayId);
        var admin = silo.As("ops", Roles.Admin);

        var now = clock.GetUtcNow();
        (await gateway.Uplink(gatewayId, EdgeHttp.Summary(gatewayId, deviceId, 1, now.AddSeconds(-5), 20))).AssertStatus(HttpStatusCode.OK);
        var online = (await admin.Get($"/api/v1/devices/{deviceId}")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal("Online", (string?)online["connection"]);
        Assert.Equal(now.AddSeconds(-5), (DateTimeOffset)online["lastSeen"]!);

        clock.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal("Online", (string?)(await admin.Get($"/api/v1/devices/{deviceId}")).AssertStatus(HttpStatusCode.OK)["connection"]);

        clock.Advance(TimeSpan.FromSeconds(40));
        Assert.Equal("Offline", (string?)(await admin.Get($"/api/v1/devices/{deviceId}")).AssertStatus(HttpStatusCode.OK)["connection"]);

        // The grain's timer stores the new status too, not only the views.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (await StoredConnection(silo, deviceId) != (int)DeviceConnection.Offline)
        {
            Assert.True(DateTime.UtcNow < deadline, "The device's stored status did not become Offline.");
            await Task.Delay(50);
        }

        // Old data from a backlog does not bring it back; fresh data does.
        (await gateway.Uplink(gatewayId, EdgeHttp.Summary(gatewayId, deviceId, 2, clock.GetUtcNow().AddMinutes(-10), 20))).AssertStatus(HttpStatusCode.OK);
        Assert.Equal("Offline", (string?)(await admin.Get($"/api/v1/devices/{deviceId}")).AssertStatus(HttpStatusCode.OK)["connection"]);
        (await gateway.Uplink(gatewayId, EdgeHttp.Alert(gatewayId, deviceId, 3, clock.GetUtcNow()))).AssertStatus(HttpStatusCode.OK);
        Assert.Equal("Online", (string?)(await admin.Get($"/api/v1/devices/{deviceId}")).AssertStatus(HttpStatusCode.OK)["connection"]);
    }

    private static async Task<int> StoredConnection(TestSilo silo, string deviceId) =>
        (int)(await silo.ReadStateAsync<DeviceState>("device", "device", deviceId)).State!.Connection;
}
