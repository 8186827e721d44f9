using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using CloudEdge.Silo.Auth;
using CloudEdge.Silo.Edge;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.Silo.Tests;

/// <summary>The model registry and a gateway's desired and reported model, over real HTTP.</summary>
public sealed class OtaTests(SiloFixture fixture) : IClassFixture<SiloFixture>
{
    private readonly TestSilo silo = fixture.Silo;

    private static string RepositoryFile(params string[] parts)
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "CloudEdge.sln")))
            {
                return Path.Combine([directory.FullName, .. parts]);
            }
        }

        throw new InvalidOperationException("The repository root (CloudEdge.sln) was not found above the test binaries.");
    }

    private static byte[] AnomalyModel(string version) => File.ReadAllBytes(RepositoryFile("models", "anomaly", version, "anomaly.onnx"));

    private static string AnomalyManifest(string version) => File.ReadAllText(RepositoryFile("models", "anomaly", version, "manifest.json"));

    private static async Task<(HttpResponseMessage Response, JsonNode? Body)> Upload(HttpClient client, string name, string version, byte[] bytes, string? manifest = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/api/v1/models/{name}/{version}") { Content = new ByteArrayContent(bytes) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        if (manifest is not null)
        {
            request.Headers.Add("X-Model-Manifest", Convert.ToBase64String(Encoding.UTF8.GetBytes(manifest)));
        }

        var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    private static async Task<(HttpResponseMessage Response, JsonNode? Body)> Put(HttpClient client, string path, object body, string? ifMatch = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, path) { Content = System.Net.Http.Json.JsonContent.Create(body) };
        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    private static async Task<HttpResponseMessage> GetDesired(HttpClient client, string gatewayId, string? ifNoneMatch = null, int? waitSeconds = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/gateways/{gatewayId}/desired" + (waitSeconds is { } w ? $"?waitSeconds={w}" : string.Empty));
        if (ifNoneMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-None-Match", ifNoneMatch);
        }

        return await client.SendAsync(request);
    }

    private async Task<string> UploadedModel(string name, string version = "v1")
    {
        var admin = silo.As("ops", Roles.Admin);
        (await Upload(admin, name, version, AnomalyModel(version), AnomalyManifest(version))).AssertStatus(HttpStatusCode.Created);
        return name;
    }

    [Fact]
    public async Task An_uploaded_model_has_a_manifest_and_a_blob_with_matching_sha256()
    {
        var admin = silo.As("ops", Roles.Admin);
        var name = Ids.New("anomaly");
        var bytes = AnomalyModel("v1");
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));

        var created = await Upload(admin, name, "v1", bytes, AnomalyManifest("v1"));
        var model = created.AssertStatus(HttpStatusCode.Created);
        Assert.Equal($"/api/v1/models/{name}/v1", created.Response.Headers.Location?.OriginalString);
        Assert.Equal(sha, (string?)model["sha256"]);
        Assert.Equal(bytes.Length, (long)model["size"]!);
        Assert.True(File.Exists(Path.Combine(silo.DataDirectory, "models", "sha256", sha)));

        var gateway = silo.Gateway(Ids.New("gw"));
        var manifest = (await gateway.Get($"/api/v1/models/{name}/v1")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(sha, (string?)manifest["sha256"]);
        Assert.Equal("cloudedge-anomaly", (string?)manifest["manifest"]!["name"]);
        Assert.Equal(0.5, (double)manifest["manifest"]!["threshold"]!);

        using var blob = await gateway.GetAsync((string)manifest["blob"]!);
        Assert.Equal(HttpStatusCode.OK, blob.StatusCode);
        var downloaded = await blob.Content.ReadAsByteArrayAsync();
        Assert.Equal(sha, Convert.ToHexStringLower(SHA256.HashData(downloaded)));
        Assert.Equal($"\"{sha}\"", blob.Headers.ETag?.Tag);
        Assert.Contains("immutable", blob.Headers.CacheControl?.ToString(), StringComparison.Ordinal);

        using var conditional = new HttpRequestMessage(HttpMethod.Get, (string)manifest["blob"]!);
        conditional.Headers.TryAddWithoutValidation("If-None-Match", $"\"{sha}\"");
        Assert.Equal(HttpStatusCode.NotModified, (await gateway.SendAsync(conditional)).StatusCode);

        // Same bytes again: the first record; other bytes for the same version: a conflict.
        (await Upload(admin, name, "v1", bytes)).AssertStatus(HttpStatusCode.OK);
        (await Upload(admin, name, "v1", AnomalyModel("v2"))).AssertStatus(HttpStatusCode.Conflict, "model_version_exists");
    }

    [Fact]
    public async Task Model_uploads_are_checked_and_reserved_for_admins()
    {
        var admin = silo.As("ops", Roles.Admin);
        var name = Ids.New("anomaly");
        (await Upload(admin, name, "v1", Encoding.UTF8.GetBytes("this is not a protobuf model at all"))).AssertStatus(HttpStatusCode.BadRequest, "not_onnx");
        (await Upload(admin, name, "v1", [0x08, 0x08])).AssertStatus(HttpStatusCode.BadRequest, "not_onnx");
        (await Upload(admin, name, "v1", AnomalyModel("v1"), AnomalyManifest("v2"))).AssertStatus(HttpStatusCode.BadRequest, "sha256_mismatch");
        (await Upload(admin, name, "v1", AnomalyModel("v1"), "[1, 2]")).AssertStatus(HttpStatusCode.BadRequest, "invalid_manifest");
        (await Upload(admin, "blobs", "v1", AnomalyModel("v1"))).AssertStatus(HttpStatusCode.BadRequest, "reserved_name");
        (await Upload(silo.Gateway("gw-1"), name, "v1", AnomalyModel("v1"))).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await Upload(silo.As(Ids.New("user")), name, "v1", AnomalyModel("v1"))).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await admin.Get($"/api/v1/models/{name}/v1")).AssertStatus(HttpStatusCode.NotFound, "model_not_found");
        (await silo.As(Ids.New("user")).Get($"/api/v1/models/{name}/v1")).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await admin.Get($"/api/v1/models/blobs/{new string('0', 64)}")).AssertStatus(HttpStatusCode.NotFound, "blob_not_found");
        (await admin.Get("/api/v1/models/blobs/not-a-hash")).AssertStatus(HttpStatusCode.BadRequest, "invalid_sha256");

        // The multipart form of the upload.
        using var form = new MultipartFormDataContent();
        var part = new ByteArrayContent(AnomalyModel("v2"));
        part.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(part, "model", "anomaly.onnx");
        form.Add(new StringContent(AnomalyManifest("v2"), Encoding.UTF8, "application/json"), "manifest");
        using var response = await admin.PutAsync($"/api/v1/models/{name}/v2", form);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(AnomalyModel("v2"))), (string?)body["sha256"]);
        Assert.Equal("cloudedge-anomaly", (string?)body["manifest"]!["name"]);
    }

    [Fact]
    public async Task The_desired_model_has_an_etag_a_304_and_a_long_poll_that_wakes_on_change()
    {
        var name = await UploadedModel(Ids.New("anomaly"));
        await UploadedModel(name, "v2");
        var admin = silo.As("ops", Roles.Admin);
        var gatewayId = Ids.New("gw");
        var gateway = silo.Gateway(gatewayId);

        using (var initial = await GetDesired(gateway, gatewayId))
        {
            Assert.Equal(HttpStatusCode.OK, initial.StatusCode);
            Assert.Equal("\"0\"", initial.Headers.ETag?.Tag);
        }

        var set = await Put(admin, $"/api/v1/gateways/{gatewayId}/desired", new { model = new { name, version = "v1" } });
        var desired = set.AssertStatus(HttpStatusCode.OK);
        Assert.Equal(1, (long)desired["version"]!);
        Assert.Equal("\"1\"", set.Response.Headers.ETag?.Tag);

        using (var read = await GetDesired(gateway, gatewayId))
        {
            var body = JsonNode.Parse(await read.Content.ReadAsStringAsync())!;
            Assert.Equal("\"1\"", read.Headers.ETag?.Tag);
            Assert.Equal(name, (string?)body["model"]!["name"]);
            Assert.Equal("v1", (string?)body["model"]!["version"]);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(AnomalyModel("v1"))), (string?)body["model"]!["sha256"]);
            Assert.Equal($"/api/v1/models/blobs/{(string?)body["model"]!["sha256"]}", (string?)body["model"]!["blob"]);
        }

        using (var unchanged = await GetDesired(gateway, gatewayId, "\"1\""))
        {
            Assert.Equal(HttpStatusCode.NotModified, unchanged.StatusCode);
            Assert.Equal("\"1\"", unchanged.Headers.ETag?.Tag);
        }

        // Setting the same model again is no change.
        Assert.Equal(1, (long)(await Put(admin, $"/api/v1/gateways/{gatewayId}/desired", new { model = new { name, version = "v1" } })).AssertStatus(HttpStatusCode.OK)["version"]!);

        var poll = GetDesired(gateway, gatewayId, "\"1\"", waitSeconds: 50);
        await WaitForLongPoll(silo, gatewayId);
        (await Put(admin, $"/api/v1/gateways/{gatewayId}/desired", new { model = new { name, version = "v2" } }, ifMatch: "\"1\"")).AssertStatus(HttpStatusCode.OK);
        using (var woken = await poll.WaitAsync(TimeSpan.FromSeconds(45)))
        {
            Assert.Equal(HttpStatusCode.OK, woken.StatusCode);
            Assert.Equal("\"2\"", woken.Headers.ETag?.Tag);
            Assert.Equal("v2", (string?)JsonNode.Parse(await woken.Content.ReadAsStringAsync())!["model"]!["version"]);
        }

        (await Put(admin, $"/api/v1/gateways/{gatewayId}/desired", new { model = new { name, version = "v1" } }, ifMatch: "\"1\"")).AssertStatus(HttpStatusCode.Conflict, "version_mismatch");
        (await Put(admin, $"/api/v1/gateways/{gatewayId}/desired", new { model = new { name, version = "v9" } })).AssertStatus(HttpStatusCode.UnprocessableEntity, "model_not_found");
        (await Put(gateway, $"/api/v1/gateways/{gatewayId}/desired", new { model = new { name, version = "v1" } })).AssertStatus(HttpStatusCode.Forbidden, "forbidden");
        (await gateway.Get($"/api/v1/gateways/{gatewayId}/desired?waitSeconds=1000")).AssertStatus(HttpStatusCode.BadRequest, "invalid_wait");
        using (var other = await GetDesired(silo.Gateway(Ids.New("gw")), gatewayId))
        {
            Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
        }
    }

    [Fact]
    public async Task A_long_poll_without_a_change_answers_304_at_its_deadline()
    {
        var gatewayId = Ids.New("gw");
        var gateway = silo.Gateway(gatewayId);
        using var response = await GetDesired(gateway, gatewayId, "\"0\"", waitSeconds: 1);
        Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
        Assert.Equal("\"0\"", response.Headers.ETag?.Tag);
    }

    /// <summary>Waits until the silo holds a long-poll of this gateway, so what follows tests the wake-up path.</summary>
    private static async Task WaitForLongPoll(TestSilo silo, string gatewayId)
    {
        var signal = silo.App.Services.GetRequiredService<DesiredChangeSignal>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!signal.HasWaiters(gatewayId))
        {
            Assert.True(DateTime.UtcNow < deadline, "The long-poll did not reach the silo.");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task A_stopping_silo_ends_its_long_polls()
    {
        var own = await TestSilo.StartAsync();
        try
        {
            var gatewayId = Ids.New("gw");
            var poll = GetDesired(own.Gateway(gatewayId), gatewayId, "\"0\"", waitSeconds: 60);
            await WaitForLongPoll(own, gatewayId);

            var stopping = own.App.StopAsync();
            // Far less than the 60 s asked for: the wait ends when the silo stops, with the unchanged answer.
            using var response = await poll.WaitAsync(TimeSpan.FromSeconds(40));
            Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
            await stopping;
        }
        finally
        {
            await own.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_reported_model_is_stored_and_visible_on_the_gateway()
    {
        var gatewayId = Ids.New("gw");
        var gateway = silo.Gateway(gatewayId);
        (await gateway.Get($"/api/v1/gateways/{gatewayId}")).AssertStatus(HttpStatusCode.NotFound, "gateway_not_found");

        var running = (await Put(gateway, $"/api/v1/gateways/{gatewayId}/reported", new { model = new { name = "anomaly", version = "v2", status = "running" } }))
            .AssertStatus(HttpStatusCode.OK);
        Assert.Equal(1, (long)running["version"]!);
        var failed = (await Put(gateway, $"/api/v1/gateways/{gatewayId}/reported", new { model = new { name = "anomaly", version = "v3", status = "failed", error = "smoke inference failed" } }))
            .AssertStatus(HttpStatusCode.OK);
        Assert.Equal(2, (long)failed["version"]!);

        var view = (await silo.As("ops", Roles.Admin).Get($"/api/v1/gateways/{gatewayId}")).AssertStatus(HttpStatusCode.OK);
        var reported = view["reported"]!["model"]!;
        Assert.Equal("v3", (string?)reported["version"]);
        Assert.Equal("failed", (string?)reported["status"]);
        Assert.Equal("smoke inference failed", (string?)reported["error"]);

        (await Put(gateway, $"/api/v1/gateways/{gatewayId}/reported", new { model = new { name = "anomaly", version = "v3", status = "exploded" } }))
            .AssertStatus(HttpStatusCode.BadRequest, "invalid_status");
        (await Put(gateway, $"/api/v1/gateways/{gatewayId}/reported", new { }))
            .AssertStatus(HttpStatusCode.BadRequest, "missing_model");
        (await Put(silo.Gateway(Ids.New("gw")), $"/api/v1/gateways/{gatewayId}/reported", new { model = new { name = "anomaly", version = "v1", status = "running" } }))
            .AssertStatus(HttpStatusCode.Forbidden, "forbidden");
    }
}
