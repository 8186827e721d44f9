using System.Collections.Concurrent;
using System.Net.Http.Headers;
using CloudEdge.Testing.Postgres;
using CloudEdge.Silo.Auth;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using CloudEdge.Grains;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;

namespace CloudEdge.Silo.Tests;

/// <summary>
/// A real silo: Kestrel on a free loopback port, the runtime with SQLite storage in a private
/// directory, the Production environment (so the signing-key rules apply).
/// </summary>
internal sealed class TestSilo : IAsyncDisposable
{
    public const string SigningKey = "cloudedge-tests-signing-key-0123456789-abcdef";
    public const string Issuer = "cloudedge";
    public const string Audience = "cloudedge-api";

    private readonly bool ownsDirectory;
    private readonly List<HttpClient> clients = [];

    private TestSilo(WebApplication app, Uri baseAddress, string dataDirectory, bool ownsDirectory)
    {
        App = app;
        BaseAddress = baseAddress;
        DataDirectory = dataDirectory;
        this.ownsDirectory = ownsDirectory;
    }

    public WebApplication App { get; }

    public Uri BaseAddress { get; }

    public string DataDirectory { get; }

    public IGrainFactory Grains => App.Services.GetRequiredService<IGrainFactory>();

    /// <summary>The platform's grain storage, to read or rewrite a grain's stored state as another silo version or a crash would leave it.</summary>
    public IGrainStorage Storage => App.Services.GetRequiredKeyedService<IGrainStorage>(PlatformStorage.Name);

    /// <summary>The stored state of a grain (type as Orleans names it: "device" for DeviceGrain), with its ETag.</summary>
    public async Task<GrainState<TState>> ReadStateAsync<TState>(string stateName, string grainType, string key)
        where TState : new()
    {
        var state = new GrainState<TState>(new TState());
        await Storage.ReadStateAsync(stateName, GrainId.Create(grainType, key), state);
        return state;
    }

    public Task WriteStateAsync<TState>(string stateName, string grainType, string key, GrainState<TState> state) =>
        Storage.WriteStateAsync(stateName, GrainId.Create(grainType, key), state);

    /// <summary>The database of each data directory: a silo restarted on a directory finds its state again.</summary>
    private static readonly ConcurrentDictionary<string, Task<string>> Databases = new(StringComparer.Ordinal);

    public static string NewDataDirectory()
    {
        var directory = Path.Combine(Path.GetTempPath(), "cloudedge-silo-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        return directory;
    }

    /// <summary>The PostgreSQL database (from the shared private server) that belongs to the data directory.</summary>
    public static Task<string> DatabaseOf(string dataDirectory) =>
        Databases.GetOrAdd(dataDirectory, static async _ => await (await PostgresServer.SharedAsync()).CreateDatabaseAsync());

    public static async Task<TestSilo> StartAsync(string? dataDirectory = null, IReadOnlyDictionary<string, string>? settings = null, Action<IServiceCollection>? services = null)
    {
        var owns = dataDirectory is null;
        var directory = dataDirectory ?? NewDataDirectory();
        var all = new Dictionary<string, string>(settings ?? new Dictionary<string, string>());
        if (!all.ContainsKey("Silo:Postgres"))
        {
            all["Silo:Postgres"] = await DatabaseOf(directory);
        }

        var app = SiloApplication.Build(Arguments(directory, all), services);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new TestSilo(app, new Uri(address), directory, owns);
    }

    public static string[] Arguments(string dataDirectory, IReadOnlyDictionary<string, string>? settings = null)
    {
        var all = new Dictionary<string, string>
        {
            ["urls"] = "http://127.0.0.1:0",
            ["environment"] = "Production",
            ["Silo:DataDirectory"] = dataDirectory,
            ["Auth:SigningKey"] = SigningKey,
            ["Logging:LogLevel:Default"] = "Warning",
            ["RateLimiting:PermitLimit"] = "100000",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            all[key] = value;
        }

        return [.. all.SelectMany(pair => new[] { "--" + pair.Key, pair.Value })];
    }

    public static string Token(string subject, params string[] roles) =>
        Token(subject, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(30), roles);

    public static string Token(string subject, DateTimeOffset notBefore, DateTimeOffset expires, params string[] roles) =>
        TokenIssuer.Mint(System.Text.Encoding.UTF8.GetBytes(SigningKey), Issuer, Audience, subject, roles, notBefore, expires);

    /// <summary>A client with no credentials.</summary>
    public HttpClient Anonymous()
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        clients.Add(client);
        return client;
    }

    /// <summary>A client whose requests carry this bearer token.</summary>
    public HttpClient WithToken(string token)
    {
        var client = Anonymous();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public HttpClient As(string subject, params string[] roles) => WithToken(Token(subject, roles));

    public async ValueTask DisposeAsync()
    {
        foreach (var client in clients)
        {
            client.Dispose();
        }

        await App.StopAsync();
        await App.DisposeAsync();
        if (ownsDirectory)
        {
            DeleteDirectory(DataDirectory);
        }
    }

    public static void DeleteDirectory(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // A SQLite handle can outlive the host by a moment; the temp directory is cleaned by the OS.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>One silo shared by the tests of a class; tests use distinct ids so they do not interfere.</summary>
public sealed class SiloFixture : IAsyncLifetime
{
    internal TestSilo Silo { get; private set; } = null!;

    public async Task InitializeAsync() => Silo = await TestSilo.StartAsync();

    public async Task DisposeAsync() => await Silo.DisposeAsync();
}

internal static class Ids
{
    public static string New(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 1 + 20, 64)];
}
