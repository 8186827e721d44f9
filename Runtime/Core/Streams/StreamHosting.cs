using CloudEdge.Runtime.Streams;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CloudEdge.Runtime.Hosting;

/// <summary>Stream providers for a silo.</summary>
public static class StreamSiloBuilderExtensions
{
    /// <summary>A durable stream provider on SQLite (WAL): events, subscriptions, cursors and dead letters survive restarts.</summary>
    public static ISiloBuilder AddSqliteStreams(this ISiloBuilder silo, string name, Action<SqliteStreamProviderOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentException.ThrowIfNullOrEmpty(name);
        var options = silo.Services.AddOptions<SqliteStreamProviderOptions>(name);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        AddProvider(silo.Services, name, sp =>
        {
            var resolved = sp.GetRequiredService<IOptionsMonitor<SqliteStreamProviderOptions>>().Get(name);
            var directory = Path.Combine(sp.GetService<IHostEnvironment>()?.ContentRootPath ?? AppContext.BaseDirectory, "data");
            return new StreamProvider(name, new SqliteStreamStore(resolved.ResolveConnectionString(directory, name)), resolved, sp);
        });
        return silo;
    }

    /// <summary>An in-memory stream provider (tests, transient data): nothing survives a restart.</summary>
    public static ISiloBuilder AddMemoryStreams(this ISiloBuilder silo, string name, Action<MemoryStreamProviderOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentException.ThrowIfNullOrEmpty(name);
        var options = silo.Services.AddOptions<MemoryStreamProviderOptions>(name);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        AddProvider(silo.Services, name, sp =>
            new StreamProvider(name, new MemoryStreamStore(), sp.GetRequiredService<IOptionsMonitor<MemoryStreamProviderOptions>>().Get(name), sp));
        return silo;
    }

    private static void AddProvider(IServiceCollection services, string name, Func<IServiceProvider, StreamProvider> create)
    {
        if (services.Any(d => d.ServiceType == typeof(StreamProviderName) && d.ImplementationInstance is StreamProviderName n && n.Name == name))
        {
            throw new InvalidOperationException($"A stream provider named '{name}' is already registered.");
        }

        services.AddSingleton(new StreamProviderName(name));
        services.AddKeyedSingleton(name, (sp, _) => create(sp));
        services.AddKeyedSingleton<IStreamProvider>(name, (sp, key) => sp.GetRequiredKeyedService<StreamProvider>(key));
        services.TryAddSingleton(sp => new StreamInstruments(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.TryAddSingleton<IStreamProviderFactory, StreamProviderFactory>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, StreamsHostedService>());
    }
}

internal sealed record StreamProviderName(string Name);

internal sealed class StreamProviderFactory(IServiceProvider services, IEnumerable<StreamProviderName> names) : IStreamProviderFactory
{
    public IStreamProvider GetStreamProvider(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return services.GetKeyedService<IStreamProvider>(name)
            ?? throw new InvalidOperationException(
                $"No stream provider named '{name}' is registered (registered: {string.Join(", ", names.Select(n => $"'{n.Name}'"))}). " +
                "Add one with silo.AddSqliteStreams(name) or silo.AddMemoryStreams(name).");
    }
}

/// <summary>Starts the stream providers after the silo, and stops them before it (hosted services stop in reverse order).</summary>
internal sealed class StreamsHostedService(IServiceProvider services, IEnumerable<StreamProviderName> names) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var name in names)
        {
            await services.GetRequiredKeyedService<StreamProvider>(name.Name).StartAsync(cancellationToken);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        foreach (var name in names)
        {
            await services.GetRequiredKeyedService<StreamProvider>(name.Name).StopAsync(cancellationToken);
        }
    }
}
