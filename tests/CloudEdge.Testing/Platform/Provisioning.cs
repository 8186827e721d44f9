using System.Net.Http.Json;

namespace CloudEdge.Testing.Platform;

/// <summary>
/// What an operator does before sensors can talk to the platform, done the way tools/run-platform.sh does it:
/// the owner and the devices registered through the REST API, and the broker's users and ACL files
/// (PBKDF2 hashes from the broker host's own <c>hash-password</c>).
/// </summary>
public static class Provisioning
{
    /// <summary>The simulator gives kinds to devices in this order (its default <c>--kinds</c>).</summary>
    public static readonly IReadOnlyList<string> SimulatorKinds = ["temperature", "humidity", "pressure", "vibration"];

    /// <summary>Registers the owner (if new) and each device behind the gateway, with the simulator's kind order.</summary>
    public static async Task RegisterDevicesAsync(HttpClient admin, string ownerId, string gatewayId, IReadOnlyList<string> deviceIds, CancellationToken cancellationToken = default)
    {
        await SendAsync(admin, "users", $"provision-user-{ownerId}", new { userId = ownerId, email = $"{ownerId}@example.com", displayName = ownerId }, cancellationToken);
        for (var i = 0; i < deviceIds.Count; i++)
        {
            var body = new { deviceId = deviceIds[i], ownerId, gatewayId, kind = SimulatorKinds[i % SimulatorKinds.Count], model = "simulated" };
            await SendAsync(admin, "devices", $"provision-device-{deviceIds[i]}", body, cancellationToken);
        }
    }

    /// <summary>
    /// Writes <c>users.txt</c> (every device with the same password, hashed) and <c>acl.txt</c> (each device may
    /// publish only under <c>devices/{its id}/#</c>) into <paramref name="directory"/>; returns both paths.
    /// </summary>
    public static async Task<(string UsersFile, string AclFile)> WriteBrokerCredentialsAsync(string directory, IEnumerable<string> deviceIds, string password)
    {
        Directory.CreateDirectory(directory);
        var dll = RepositoryLayout.BuiltDll(Path.Combine("Mqtt", "BrokerHost"), "CloudEdge.Mqtt.BrokerHost");
        var result = await ExternalProcess.RunAsync("dotnet", [dll, "hash-password", password], TimeSpan.FromSeconds(60));
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"hash-password exited with {result.ExitCode}: {result.Stderr}");
        }

        var hash = result.StdoutText.Trim();
        var users = Path.Combine(directory, "users.txt");
        var acl = Path.Combine(directory, "acl.txt");
        await File.WriteAllLinesAsync(users, deviceIds.Select(id => $"{id}:{hash}"));
        await File.WriteAllTextAsync(acl, "publish * devices/{clientid}/#\n");
        return (users, acl);
    }

    private static async Task SendAsync(HttpClient admin, string path, string idempotencyKey, object body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "api/v1/" + path) { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", idempotencyKey);
        using var response = await admin.SendAsync(request, cancellationToken);
        // 409: registered by an earlier run on the same data directory, which is what a re-provision expects.
        if (!response.IsSuccessStatusCode && (int)response.StatusCode != 409)
        {
            throw new InvalidOperationException($"POST /api/v1/{path} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
        }
    }
}
