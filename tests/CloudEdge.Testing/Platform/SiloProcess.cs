using System.Net.Http.Headers;
using CloudEdge.Testing.Postgres;

namespace CloudEdge.Testing.Platform;

/// <summary>How to run the Silo: its port, its data directory (kept across restarts) and its signing key.</summary>
public sealed record SiloSettings(string DataDirectory, string SigningKey)
{
    /// <summary>0: pick a free port when starting.</summary>
    public int Port { get; init; }

    /// <summary>Extra configuration, passed as <c>--Key value</c> flags (e.g. <c>["Live:ClientBufferEvents"] = "16"</c>).</summary>
    public IReadOnlyDictionary<string, string> Configuration { get; init; } = new Dictionary<string, string>();

    /// <summary>Extra environment (e.g. OTEL_EXPORTER_OTLP_ENDPOINT); null removes a variable.</summary>
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();

    public string? LogFile { get; init; }

    /// <summary>The PostgreSQL connection string; null: a database of the shared test server, one per data directory.</summary>
    public string? Postgres { get; init; }
}

/// <summary>
/// The real Silo (<c>Silo/bin/{configuration}/net10.0/CloudEdge.Silo.dll</c>) on 127.0.0.1, in Production
/// mode with rate limiting off, ready when <c>/health/ready</c> answers 200.
/// </summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private SiloProcess(HostProcess process, SiloSettings settings)
    {
        Process = process;
        Settings = settings;
    }

    public HostProcess Process { get; }

    /// <summary>The settings it runs with, port filled in: start another with them to restart on the same data.</summary>
    public SiloSettings Settings { get; }

    public int Port => Settings.Port;

    /// <summary>The base URL, with a trailing slash: <c>http://127.0.0.1:{port}/</c>.</summary>
    public string Url => $"http://127.0.0.1:{Port}/";

    public static string Dll => RepositoryLayout.BuiltDll("Silo", "CloudEdge.Silo");

    public static async Task<SiloProcess> StartAsync(SiloSettings settings, TimeSpan? timeout = null)
    {
        settings = settings.Port == 0 ? settings with { Port = RepositoryLayout.FreePort() } : settings;
        Directory.CreateDirectory(settings.DataDirectory);
        List<string> arguments = ["--urls", $"http://127.0.0.1:{settings.Port}", "--Silo:DataDirectory", settings.DataDirectory];
        foreach (var (key, value) in settings.Configuration)
        {
            arguments.Add("--" + key);
            arguments.Add(value);
        }

        var environment = Environment(settings.SigningKey, settings.Environment);
        // Through the environment, never the command line: the connection string carries a password.
        environment["Silo__Postgres"] = settings.Postgres ?? await DatabaseOf(settings.DataDirectory);
        // A container's settings (advertise its address) become this machine's: loopback only.
        environment["Silo__AdvertisedAddress"] = "127.0.0.1";
        var process = HostProcess.Start("silo", Dll, arguments, environment, settings.LogFile);
        var silo = new SiloProcess(process, settings);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            await process.WaitUntilAsync(async () =>
            {
                try
                {
                    using var response = await http.GetAsync($"{silo.Url}health/ready");
                    return response.IsSuccessStatusCode;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    return false;
                }
            }, "the Silo to be ready", timeout);
        }
        catch
        {
            await silo.DisposeAsync();
            throw;
        }

        return silo;
    }

    /// <summary>The database of the shared test PostgreSQL that belongs to a data directory (a restart finds its state).</summary>
    public static Task<string> DatabaseOf(string dataDirectory) =>
        Databases.GetOrAdd(Path.GetFullPath(dataDirectory), static async _ => await (await PostgresServer.SharedAsync()).CreateDatabaseAsync());

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Task<string>> Databases = new(StringComparer.Ordinal);

    /// <summary>Mints a JWT with the Silo's own <c>token</c> subcommand (same key, issuer and audience).</summary>
    public static async Task<string> MintTokenAsync(string signingKey, string subject, string role, TimeSpan? lifetime = null)
    {
        List<string> arguments = [Dll, "token", "--sub", subject, "--role", role];
        if (lifetime is { } l)
        {
            arguments.AddRange(["--lifetime", l.ToString("c", System.Globalization.CultureInfo.InvariantCulture)]);
        }

        var environment = Environment(signingKey, new Dictionary<string, string?>()).Where(e => e.Value is not null).ToDictionary(e => e.Key, e => e.Value!);
        var result = await ExternalProcess.RunAsync("dotnet", arguments, TimeSpan.FromSeconds(60), environment: environment);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"silo token exited with {result.ExitCode}: {result.Stderr}");
        }

        return result.StdoutText.Trim().Split('\n')[^1].Trim();
    }

    public Task<string> MintTokenAsync(string subject, string role, TimeSpan? lifetime = null) =>
        MintTokenAsync(Settings.SigningKey, subject, role, lifetime);

    /// <summary>An HttpClient on the Silo's base URL sending the token as a bearer.</summary>
    public HttpClient Client(string token)
    {
        var client = new HttpClient { BaseAddress = new Uri(Url), Timeout = TimeSpan.FromSeconds(100) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>SIGKILL: the Silo dies mid-flight, as in a crash.</summary>
    public void Kill() => Process.Kill();

    /// <summary>SIGTERM: graceful shutdown (grains deactivate, state is written).</summary>
    public Task<int> StopAsync() => Process.StopAsync();

    public ValueTask DisposeAsync() => Process.DisposeAsync();

    private static Dictionary<string, string?> Environment(string signingKey, IReadOnlyDictionary<string, string?> extra)
    {
        var environment = new Dictionary<string, string?>
        {
            ["Auth__SigningKey"] = signingKey,
            ["RateLimiting__Enabled"] = "false",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
        };
        foreach (var (key, value) in extra)
        {
            environment[key] = value;
        }

        return environment;
    }
}
