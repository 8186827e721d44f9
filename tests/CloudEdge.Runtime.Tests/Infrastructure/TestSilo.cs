using CloudEdge.Runtime.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CloudEdge.Runtime.Tests.Infrastructure;

/// <summary>A real host with a silo, built the way applications build theirs.</summary>
public sealed class TestSilo : IAsyncDisposable
{
    private bool stopped;

    private TestSilo(IHost host) => Host = host;

    public IHost Host { get; }

    public IGrainFactory Grains => Host.Services.GetRequiredService<IGrainFactory>();

    public IServiceProvider Services => Host.Services;

    public static async Task<TestSilo> StartAsync(Action<ISiloBuilder>? configure = null, Action<SiloOptions>? options = null, TimeProvider? time = null, Action<IServiceCollection>? services = null)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.UseSilo(silo =>
        {
            silo.AddGrains(typeof(TestSilo).Assembly);
            configure?.Invoke(silo);
        });
        builder.Services.Configure<SiloOptions>(o =>
        {
            o.SiloName = "test";
            options?.Invoke(o);
        });
        if (time is not null)
        {
            builder.Services.AddSingleton(time);
        }

        services?.Invoke(builder.Services);
        var host = builder.Build();
        await host.StartAsync();
        return new TestSilo(host);
    }

    public async Task StopAsync()
    {
        if (stopped)
        {
            return;
        }

        stopped = true;
        await Host.StopAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Host.Dispose();
    }
}

/// <summary>A temporary directory removed after the test.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cloudedge-runtime-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A pooled handle may linger a moment on some systems; the OS temp cleaner gets it.
        }
    }
}

