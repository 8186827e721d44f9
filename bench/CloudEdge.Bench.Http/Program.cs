using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CloudEdge.Silo.Auth;

// HTTP benchmark: a grain-backed GET (/api/v1/orders/{id}: auth, grain call, JSON) against a constant
// minimal-API GET (/api/v1/ping: same auth and pipeline, no grain), both driven by wrk in the same run
// against a real silo process on loopback. Rounds alternate so drift hits both alike; the medians and
// their ratio are printed. Target: grain-backed >= 0.7x the constant endpoint's requests/s.
//
//   dotnet run -c Release --project bench/CloudEdge.Bench.Http -- [--duration 10] [--connections 32] [--threads 1] [--rounds 3]

var duration = IntOption("--duration", 10);
var connections = IntOption("--connections", 32);
var threads = IntOption("--threads", 1);
var rounds = IntOption("--rounds", 3);
var siloPath = Option("--silo") ?? Path.Combine(AppContext.BaseDirectory, "CloudEdge.Silo.dll");
const string Key = "cloudedge-bench-signing-key-0123456789-abcdef";

var port = FreePort();
var dataDirectory = Path.Combine(Path.GetTempPath(), "cloudedge-bench-http", Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(dataDirectory);
var baseUrl = $"http://127.0.0.1:{port}";
using var silo = Process.Start(new ProcessStartInfo("dotnet")
{
    ArgumentList =
    {
        siloPath, "--urls", baseUrl, "--environment", "Production", "--Silo:DataDirectory", dataDirectory,
        "--Auth:SigningKey", Key, "--RateLimiting:Enabled", "false", "--Logging:LogLevel:Default", "Warning",
    },
    RedirectStandardOutput = true,
    RedirectStandardError = true,
    WorkingDirectory = Path.GetDirectoryName(siloPath)!,
    // The Silo's PostgreSQL, through the environment (the connection string has a password).
    Environment =
    {
        ["Silo__Postgres"] = Environment.GetEnvironmentVariable("CLOUDEDGE_POSTGRES")
            ?? throw new InvalidOperationException("Set CLOUDEDGE_POSTGRES to a PostgreSQL connection string (tools/postgres.sh start DIR prints one)."),
    },
}) ?? throw new InvalidOperationException("Could not start the silo.");
silo.OutputDataReceived += (_, _) => { };
silo.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("silo: " + e.Data); };
silo.BeginOutputReadLine();
silo.BeginErrorReadLine();

try
{
    var now = DateTimeOffset.UtcNow;
    var token = TokenIssuer.Mint(Encoding.UTF8.GetBytes(Key), "cloudedge", "cloudedge-api", "bench-user", [Roles.User], now.AddMinutes(-1), now.AddHours(2));
    using var http = new HttpClient { BaseAddress = new Uri(baseUrl) };
    http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
    await WaitReady(http);

    await Send(http, "/api/v1/users", new { email = "bench@example.com", displayName = "Bench" }, "bench-register");
    var order = await Send(http, "/api/v1/orders", new { lines = new[] { new { sku = "bench", quantity = 2, unitPrice = 9.99m } } }, "bench-order");
    var orderPath = $"/api/v1/orders/{order["orderId"]}";

    Console.WriteLine($"silo {siloPath} on {baseUrl}; wrk -t{threads} -c{connections} -d{duration}s, {rounds} alternating rounds, 2 s warm-up each");
    await Wrk("/api/v1/ping", 2);
    await Wrk(orderPath, 2);
    var constant = new List<double>();
    var grain = new List<double>();
    for (var i = 0; i < rounds; i++)
    {
        constant.Add(await Wrk("/api/v1/ping", duration));
        grain.Add(await Wrk(orderPath, duration));
        Console.WriteLine($"round {i + 1}: constant {constant[^1]:F0} req/s, grain-backed {grain[^1]:F0} req/s");
    }

    var c = Median(constant);
    var g = Median(grain);
    Console.WriteLine($"constant GET /api/v1/ping:            {c:F0} req/s (median)");
    Console.WriteLine($"grain-backed GET /api/v1/orders/{{id}}: {g:F0} req/s (median)");
    Console.WriteLine($"ratio grain/constant: {g / c:F2} (target >= 0.70) {(g / c >= 0.7 ? "PASS" : "FAIL")}");
    return g / c >= 0.7 ? 0 : 1;

    async Task<double> Wrk(string path, int seconds)
    {
        var wrk = Process.Start(new ProcessStartInfo("wrk")
        {
            ArgumentList = { $"-t{threads}", $"-c{connections}", $"-d{seconds}s", "-H", $"Authorization: Bearer {token}", baseUrl + path },
            RedirectStandardOutput = true,
        }) ?? throw new InvalidOperationException("Could not start wrk (Debian package 'wrk').");
        var output = await wrk.StandardOutput.ReadToEndAsync();
        await wrk.WaitForExitAsync();
        if (Regex.Match(output, @"Non-2xx or 3xx responses: (\d+)") is { Success: true } errors)
        {
            throw new InvalidOperationException($"{path} answered {errors.Groups[1].Value} errors:\n{output}");
        }

        var match = Regex.Match(output, @"Requests/sec:\s+([0-9.]+)");
        return match.Success
            ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)
            : throw new InvalidOperationException("Unexpected wrk output:\n" + output);
    }
}
finally
{
    if (!silo.HasExited)
    {
        silo.Kill(entireProcessTree: true);
        await silo.WaitForExitAsync();
    }

    try
    {
        Directory.Delete(dataDirectory, recursive: true);
    }
    catch (IOException)
    {
    }
}

static async Task WaitReady(HttpClient http)
{
    var deadline = DateTime.UtcNow.AddSeconds(60);
    while (true)
    {
        try
        {
            using var response = await http.GetAsync("/health/ready");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return;
            }
        }
        catch (HttpRequestException) when (DateTime.UtcNow < deadline)
        {
        }

        if (DateTime.UtcNow >= deadline)
        {
            throw new TimeoutException("The silo did not become ready within 60 s.");
        }

        await Task.Delay(200);
    }
}

static async Task<JsonNode> Send(HttpClient http, string path, object body, string idempotencyKey)
{
    using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
    request.Headers.Add("Idempotency-Key", idempotencyKey);
    using var response = await http.SendAsync(request);
    var text = await response.Content.ReadAsStringAsync();
    return response.IsSuccessStatusCode
        ? JsonNode.Parse(text)!
        : throw new InvalidOperationException($"POST {path}: {(int)response.StatusCode} {text}");
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

static int FreePort()
{
    using var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}

string? Option(string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}

int IntOption(string name, int fallback) =>
    Option(name) is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;
