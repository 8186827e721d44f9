using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using CloudEdge.Testing.Sse;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace CloudEdge.Platform.Tests;

/// <summary>
/// The dashboard in Debian's headless chromium (driven by Playwright, never a downloaded browser) against
/// the real platform: the Silo, an edge agent and the simulator as processes, sensors with many anomalies
/// and short windows. The page is only ever fed by the Silo's REST routes and live streams.
/// </summary>
public sealed partial class DashboardTests
{
    private const string Chromium = "/usr/bin/chromium";

    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    // Loaded machine, three .NET processes and a browser: the live events come, but not quickly.
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);
    private static readonly float PatienceMs = (float)Patience.TotalMilliseconds;

    [Fact]
    public async Task Dashboard_shows_the_running_platform_live_alerts_with_trace_ids_summary_charts_and_orders()
    {
        await using var platform = await LocalPlatform.StartAsync(new LocalPlatformOptions { Devices = 4, WindowLength = TimeSpan.FromSeconds(2) });
        await using var simulator = SimulatorProcess.Start(platform.Simulator() with { Rate = 10, AnomalyRate = 0.1, Duration = TimeSpan.FromMinutes(10) });
        using var admin = platform.AdminClient();
        var device = platform.DeviceIds[0];
        await SendAsync(admin, HttpMethod.Patch, $"api/v1/devices/{device}/desired", new { properties = new { samplingRateHz = 50 } });

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox"] });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1440, Height = 1000 } });
        var problems = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                lock (problems)
                {
                    problems.Add($"console: {message.Text} ({message.Location})");
                }
            }
        };
        page.PageError += (_, error) =>
        {
            lock (problems)
            {
                problems.Add($"page error: {error}");
            }
        };

        // Fleet: the token moves from the fragment into the session, devices come online, alerts stream in.
        await page.GotoAsync($"{platform.Silo.Url}dashboard/#token={platform.AdminToken}");
        Assert.DoesNotContain("token=", page.Url, StringComparison.Ordinal);
        await Expect(page.GetByTestId("devices-online")).ToHaveTextAsync(OnlineCount(), new() { Timeout = PatienceMs });
        await Expect(page.GetByTestId("device-row")).ToHaveCountAsync(platform.DeviceIds.Count, new() { Timeout = PatienceMs });
        await Expect(page.Locator("[data-testid=stream-status][data-stream=alerts]")).ToHaveAttributeAsync("data-state", "live", new() { Timeout = PatienceMs });
        await Expect(page.GetByTestId("alert-row").First).ToBeVisibleAsync(new() { Timeout = PatienceMs });

        // Live, not only replayed: a row newer than every row present now arrives without a reload.
        var seqNow = await MaxAlertSeqAsync(page);
        await Wait.UntilAsync(async () => await MaxAlertSeqAsync(page) > seqNow, $"an alert newer than seq {seqNow} on the page\n{platform.Diagnostics()}", Patience);

        var traces = await page.GetByTestId("alert-row").GetByTestId("trace-id").EvaluateAllAsync<string[]>("codes => codes.map(c => c.dataset.traceId)");
        Assert.NotEmpty(traces);
        Assert.All(traces, trace => Assert.Matches(TraceId(), trace));

        // The trace id on the page is the one the Silo stored with the alert: the device twin's latest alert
        // shows up in the feed (the feed may run ahead of one REST read, so read again until they meet).
        string? matched = null;
        await Wait.UntilAsync(async () =>
        {
            foreach (var id in platform.DeviceIds)
            {
                using var twin = JsonDocument.Parse(await admin.GetStringAsync($"api/v1/devices/{id}"));
                if (twin.RootElement.GetProperty("latestAlert") is { ValueKind: JsonValueKind.Object } alert
                    && alert.GetProperty("traceId").GetString() is { Length: 32 } trace
                    && await page.Locator($"[data-testid=alert-row][data-device-id='{id}'] [data-trace-id='{trace}']").CountAsync() > 0)
                {
                    matched = trace;
                    return true;
                }
            }

            return false;
        }, "a twin's latest alert (REST) with the same trace id in the live feed", Patience);
        Assert.Matches(TraceId(), matched);
        var fleetShot = await ScreenshotAsync(page, "dashboard-fleet.png");

        // Device page: the Chart.js chart fills with live summaries; the model version and twin are shown.
        await page.Locator($"[data-testid=device-row][data-device-id='{device}'] a").ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex($"#/devices/{device}$"));
        var chartPoints = "() => { const chart = Chart.getChart(document.querySelector('[data-testid=summary-chart]')); return chart ? chart.data.datasets.slice(0, 3).map(d => d.data.length) : []; }";
        await Wait.UntilAsync(async () => await page.EvaluateAsync<int[]>(chartPoints) is [> 1, > 1, > 1], $"summaries of {device} in the chart\n{platform.Diagnostics()}", Patience);
        var points = await page.EvaluateAsync<int[]>(chartPoints);
        Assert.Equal(points[0], points[1]);
        var windowCount = points[1];
        await Wait.UntilAsync(async () => (await page.EvaluateAsync<int[]>(chartPoints))[1] > windowCount, "one more live summary in the chart", Patience);
        await Expect(page.GetByTestId("model-version")).Not.ToHaveTextAsync("—", new() { Timeout = PatienceMs });
        await Expect(page.GetByTestId("twin-desired").Locator("[data-testid=twin-property][data-name=samplingRateHz]")).ToContainTextAsync("50", new() { Timeout = PatienceMs });
        var deviceShot = await ScreenshotAsync(page, "dashboard-device.png");

        // Orders: a row appears live for an order created after the page subscribed, and turns Paid.
        await page.GetByRole(AriaRole.Link, new() { Name = "Orders", Exact = true }).ClickAsync();
        await page.GetByTestId("order-user").SelectOptionAsync(platform.Options.OwnerId);
        await Expect(page.Locator("[data-testid=stream-status][data-stream^=orders]")).ToHaveAttributeAsync("data-state", "live", new() { Timeout = PatienceMs });
        await Expect(page.GetByTestId("order-feed")).ToContainTextAsync("No orders yet", new() { Timeout = PatienceMs });
        var created = await SendAsync(admin, HttpMethod.Post, "api/v1/orders",
            new { userId = platform.Options.OwnerId, lines = new[] { new { sku = "sensor-kit", quantity = 2, unitPrice = 19.5m } } });
        var orderId = created.GetProperty("orderId").GetString()!;
        var row = page.Locator($"[data-testid=order-row][data-order-id='{orderId}']");
        await Expect(row).ToBeVisibleAsync(new() { Timeout = PatienceMs });
        await SendAsync(admin, HttpMethod.Post, $"api/v1/orders/{orderId}/pay", new { });
        await Expect(row.GetByTestId("order-status")).ToHaveTextAsync("Paid", new() { Timeout = PatienceMs });
        await Expect(row).ToContainTextAsync("39.00");
        var ordersShot = await ScreenshotAsync(page, "dashboard-orders.png");

        foreach (var shot in new[] { fleetShot, deviceShot, ordersShot })
        {
            var bytes = await File.ReadAllBytesAsync(shot);
            Assert.True(bytes.Length > 1000, $"{shot} is {bytes.Length} bytes");
            Assert.Equal(PngSignature, bytes[..8]);
        }

        lock (problems)
        {
            Assert.True(problems.Count == 0, "The page logged errors:\n" + string.Join('\n', problems));
        }
    }

    [Fact]
    public async Task Dashboard_streams_resume_after_a_Silo_restart_with_no_alert_lost_or_shown_twice()
    {
        await using var platform = await LocalPlatform.StartAsync(new LocalPlatformOptions { Devices = 2, WindowLength = TimeSpan.FromSeconds(2) });
        await using var simulator = SimulatorProcess.Start(platform.Simulator() with { Rate = 10, AnomalyRate = 0.05, Duration = TimeSpan.FromMinutes(10) });
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox"] });
        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{platform.Silo.Url}dashboard/#token={platform.AdminToken}");
        var chip = page.Locator("[data-testid=stream-status][data-stream=alerts]");
        await Expect(chip).ToHaveAttributeAsync("data-state", "live", new() { Timeout = PatienceMs });
        await Expect(page.GetByTestId("alert-row").First).ToBeVisibleAsync(new() { Timeout = PatienceMs });

        // The page notices the loss, and resumes by itself once the Silo is back on the same port.
        platform.Silo.Kill();
        await Expect(chip).Not.ToHaveAttributeAsync("data-state", "live", new() { Timeout = PatienceMs });
        var seqBefore = await MaxAlertSeqAsync(page);
        await platform.RestartSiloAsync();
        await Expect(chip).ToHaveAttributeAsync("data-state", "live", new() { Timeout = PatienceMs });
        await Wait.UntilAsync(async () => await MaxAlertSeqAsync(page) > seqBefore + 2, $"alerts after seq {seqBefore} once the Silo is back\n{platform.Diagnostics()}", Patience);

        // Resuming from the last id seen: the page holds every alert the stream carried over the seqs it
        // shows, each once (a repeat published after the crash has a new seq but the same item id).
        var rows = await page.GetByTestId("alert-row").EvaluateAllAsync<AlertRow[]>("rows => rows.map(row => ({ seq: Number(row.dataset.seq), itemId: row.dataset.itemId }))");
        var shown = rows.Select(row => row.ItemId).ToList();
        Assert.Equal(shown.Count, shown.Distinct().Count());
        using var admin = platform.AdminClient();
        var streamed = await AlertItemsAsync(admin, rows.Min(row => row.Seq) - 1, rows.Max(row => row.Seq));
        Assert.Equal(streamed.Order(StringComparer.Ordinal), shown.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Dashboard_assets_are_served_with_validators_and_a_strict_policy_and_the_page_handles_refused_and_user_tokens()
    {
        await using var platform = await LocalPlatform.StartAsync(new LocalPlatformOptions { Devices = 1 });
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(platform.Silo.Url) };

        using (var root = await http.GetAsync("/"))
        {
            Assert.Equal(System.Net.HttpStatusCode.Found, root.StatusCode);
            Assert.Equal("/dashboard/", root.Headers.Location?.OriginalString);
        }

        using var index = await http.GetAsync("dashboard/");
        index.EnsureSuccessStatusCode();
        Assert.Equal("text/html", index.Content.Headers.ContentType?.MediaType);
        Assert.Equal("nosniff", index.Headers.GetValues("X-Content-Type-Options").Single());
        var policy = index.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("default-src 'self'", policy, StringComparison.Ordinal);
        Assert.Contains("script-src 'self';", policy, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", policy, StringComparison.Ordinal);
        var html = await index.Content.ReadAsStringAsync();
        Assert.DoesNotMatch(InlineScript(), html);

        // The chart library is the npm bundle, embedded in the Silo's output, revalidated by ETag.
        using var chart = await http.GetAsync("dashboard/vendor/chart.umd.min.js");
        chart.EnsureSuccessStatusCode();
        Assert.Equal("text/javascript", chart.Content.Headers.ContentType?.MediaType);
        Assert.Contains("Chart.js v4", await chart.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var etag = chart.Headers.ETag ?? throw new InvalidOperationException("no ETag");
        using var revalidate = new HttpRequestMessage(HttpMethod.Get, "dashboard/vendor/chart.umd.min.js");
        revalidate.Headers.IfNoneMatch.Add(etag);
        using var notModified = await http.SendAsync(revalidate);
        Assert.Equal(System.Net.HttpStatusCode.NotModified, notModified.StatusCode);
        using var missing = await http.GetAsync("dashboard/no-such-file.js");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, missing.StatusCode);

        // A token the Silo refuses brings the token form back with the reason; a good one opens the fleet.
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox"] });
        var page = await browser.NewPageAsync();
        await page.GotoAsync($"{platform.Silo.Url}dashboard/#token=not-a-jwt");
        await Expect(page.Locator("#token-panel")).ToBeVisibleAsync(new() { Timeout = PatienceMs });
        await Expect(page.Locator("#token-message")).ToContainTextAsync("refused", new() { Timeout = PatienceMs });
        await page.GetByTestId("token-input").FillAsync(platform.AdminToken);
        await page.GetByTestId("token-submit").ClickAsync();
        await Expect(page.Locator("#token-panel")).ToBeHiddenAsync(new() { Timeout = PatienceMs });
        await Expect(page.GetByTestId("device-row")).ToHaveCountAsync(1, new() { Timeout = PatienceMs });
        Assert.Equal(platform.AdminToken, await page.EvaluateAsync<string>("() => sessionStorage.getItem('cloudedge.token')"));

        // A user's token: their own devices, and the admin-only fleet stream says it is forbidden instead of retrying.
        var userToken = await platform.Silo.MintTokenAsync(platform.Options.OwnerId, "user");
        var userPage = await browser.NewPageAsync();
        await userPage.GotoAsync($"{platform.Silo.Url}dashboard/#token={userToken}");
        await Expect(userPage.Locator("[data-testid=stream-status][data-stream=alerts]")).ToHaveAttributeAsync("data-state", "forbidden", new() { Timeout = PatienceMs });
        await Expect(userPage.GetByTestId("device-row")).ToHaveCountAsync(1, new() { Timeout = PatienceMs });
        await Expect(userPage.GetByTestId("signed-in-as")).ToHaveTextAsync(platform.Options.OwnerId);
    }

    private static async Task<long> MaxAlertSeqAsync(IPage page) =>
        await page.GetByTestId("alert-row").EvaluateAllAsync<long>("rows => rows.reduce((max, row) => Math.max(max, Number(row.dataset.seq)), -1)");

    /// <summary>The distinct alert item ids of the fleet alert stream from after <paramref name="afterSeq"/> through <paramref name="untilSeq"/>, read as SSE.</summary>
    private static async Task<List<string>> AlertItemsAsync(HttpClient admin, long afterSeq, long untilSeq)
    {
        using var expiry = new CancellationTokenSource(Patience);
        using var response = await ServerSentEventReader.OpenAsync(admin, $"api/v1/live/alerts?lastEventId={afterSeq}", cancellationToken: expiry.Token);
        response.EnsureSuccessStatusCode();
        using var reader = new ServerSentEventReader(await response.Content.ReadAsStreamAsync(expiry.Token));
        var items = new List<string>();
        while (await reader.ReadAsync(expiry.Token) is { } message)
        {
            using var data = JsonDocument.Parse(message.Data);
            var itemId = data.RootElement.GetProperty("alert").GetProperty("itemId").GetString()!;
            if (!items.Contains(itemId))
            {
                items.Add(itemId);
            }

            if (data.RootElement.GetProperty("seq").GetInt64() >= untilSeq)
            {
                break;
            }
        }

        return items;
    }

    private static async Task<string> ScreenshotAsync(IPage page, string name)
    {
        var directory = Environment.GetEnvironmentVariable("CLOUDEDGE_ARTIFACTS") is { Length: > 0 } configured
            ? configured
            : Path.Combine(RepositoryLayout.Root, "artifacts", "screenshots");
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, name);
        File.Delete(path);
        await page.ScreenshotAsync(new() { Path = path, FullPage = true });
        return path;
    }

    private static async Task<JsonElement> SendAsync(HttpClient client, HttpMethod method, string path, object body)
    {
        using var request = new HttpRequestMessage(method, path) { Content = JsonContent.Create(body) };
        request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{method} {path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>An alert row as the page holds it (Playwright fills settable properties).</summary>
    private sealed class AlertRow
    {
        public long Seq { get; set; }

        public string ItemId { get; set; } = string.Empty;
    }

    [GeneratedRegex("^[1-9][0-9]*$")]
    private static partial Regex OnlineCount();

    [GeneratedRegex("^[0-9a-f]{32}$")]
    private static partial Regex TraceId();

    [GeneratedRegex(@"<script(?![^>]*\bsrc=)[^>]*>", RegexOptions.IgnoreCase)]
    private static partial Regex InlineScript();
}
