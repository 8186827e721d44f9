using System.Reflection;
using CloudEdge.Runtime.Activation;
using CloudEdge.Runtime.Persistence;
using CloudEdge.Runtime.Reminders;
using CloudEdge.Runtime.Serialization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CloudEdge.Runtime.Hosting;

/// <summary>Configures a silo: grains, storage, reminders, call filters.</summary>
public interface ISiloBuilder
{
    IServiceCollection Services { get; }

    IConfiguration Configuration { get; }
}

internal sealed class SiloBuilder(IServiceCollection services, IConfiguration configuration) : ISiloBuilder
{
    public IServiceCollection Services { get; } = services;

    public IConfiguration Configuration { get; } = configuration;
}

/// <summary>Adds a CloudEdge silo to a host, like Orleans' UseOrleans.</summary>
public static class SiloHostingExtensions
{
    /// <summary>Adds the silo to the host: <c>builder.UseSilo(silo => silo.AddGrains(typeof(MyGrain).Assembly))</c>.</summary>
    public static IHostApplicationBuilder UseSilo(this IHostApplicationBuilder builder, Action<ISiloBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        AddSiloCore(builder.Services, builder.Configuration, configure);
        return builder;
    }

    /// <summary>Adds the silo to a service collection (configuration is read from DI when the silo starts).</summary>
    public static IServiceCollection AddSilo(this IServiceCollection services, Action<ISiloBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        var configuration = services.LastOrDefault(d => d.ServiceType == typeof(IConfiguration))?.ImplementationInstance as IConfiguration
            ?? new ConfigurationBuilder().Build();
        AddSiloCore(services, configuration, configure);
        return services;
    }

    private static void AddSiloCore(IServiceCollection services, IConfiguration configuration, Action<ISiloBuilder> configure)
    {
        if (!services.Any(d => d.ServiceType == typeof(SiloMarker)))
        {
            services.AddSingleton<SiloMarker>();
            // Bound from "Silo" when the container has a configuration (a host always does; a bare ServiceCollection may not).
            services.AddOptions<SiloOptions>().Configure<IServiceProvider>((options, sp) =>
                sp.GetService<IConfiguration>()?.GetSection(SiloOptions.SectionName).Bind(options));
            services.TryAddSingleton(TimeProvider.System);
            services.AddLogging();
            services.AddMetrics();
            services.TryAddSingleton<GrainClassRegistry>();
            services.TryAddSingleton<SiloRuntime>();
            services.TryAddSingleton<IGrainFactory>(sp => sp.GetRequiredService<SiloRuntime>().GrainFactory);
            services.TryAddSingleton(sp => new GrainJson(sp.GetRequiredService<SiloRuntime>().GrainFactory));
            services.AddHostedService<SiloHostedService>();
        }

        configure(new SiloBuilder(services, configuration));
    }

    /// <summary>Registers every grain class (a non-abstract class implementing a grain interface) in the assembly.</summary>
    public static ISiloBuilder AddGrains(this ISiloBuilder silo, Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        foreach (var type in assembly.GetTypes().Where(GrainClassRegistry.IsGrainClass))
        {
            silo.Services.AddSingleton(new GrainClassRegistration(type));
        }

        return silo;
    }

    /// <summary>Registers one grain class.</summary>
    public static ISiloBuilder AddGrain<TGrain>(this ISiloBuilder silo)
        where TGrain : class, IGrain
    {
        if (!GrainClassRegistry.IsGrainClass(typeof(TGrain)))
        {
            throw new ArgumentException($"{typeof(TGrain).Name} is not a concrete grain class.");
        }

        silo.Services.AddSingleton(new GrainClassRegistration(typeof(TGrain)));
        return silo;
    }

    /// <summary>Grain storage in memory (tests, development).</summary>
    public static ISiloBuilder AddMemoryGrainStorage(this ISiloBuilder silo, string name = IGrainStorage.DefaultName)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        silo.Services.AddKeyedSingleton<IGrainStorage>(name, (sp, _) => new MemoryGrainStorage(name, sp.GetRequiredService<GrainJson>()));
        return silo;
    }

    /// <summary>Grain storage in an embedded SQLite database (WAL), the default durable store.</summary>
    public static ISiloBuilder AddSqliteGrainStorage(this ISiloBuilder silo, string name = IGrainStorage.DefaultName, Action<SqliteGrainStorageOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var options = silo.Services.AddOptions<SqliteGrainStorageOptions>(name);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        silo.Services.AddKeyedSingleton<IGrainStorage>(name, (sp, _) =>
        {
            var resolved = sp.GetRequiredService<IOptionsMonitor<SqliteGrainStorageOptions>>().Get(name);
            var connectionString = resolved.ResolveConnectionString(DefaultDataDirectory(sp), "grains.db");
            return new SqliteGrainStorage(name, connectionString, sp.GetRequiredService<GrainJson>());
        });
        return silo;
    }

    /// <summary>Reminders kept in memory: durable across deactivation, not across restarts.</summary>
    public static ISiloBuilder UseInMemoryReminderService(this ISiloBuilder silo)
    {
        silo.Services.RemoveAll<IReminderTable>();
        silo.Services.AddSingleton<IReminderTable, InMemoryReminderTable>();
        AddReminderService(silo.Services);
        return silo;
    }

    /// <summary>Reminders in an embedded SQLite database: they fire after a restart.</summary>
    public static ISiloBuilder UseSqliteReminderService(this ISiloBuilder silo, Action<SqliteReminderOptions>? configure = null)
    {
        var options = silo.Services.AddOptions<SqliteReminderOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        silo.Services.RemoveAll<IReminderTable>();
        silo.Services.AddSingleton<IReminderTable>(sp => new SqliteReminderTable(
            SqliteReminderTable.ResolveConnectionString(sp.GetRequiredService<IOptions<SqliteReminderOptions>>().Value, DefaultDataDirectory(sp))));
        AddReminderService(silo.Services);
        return silo;
    }

    /// <summary>Adds a filter that runs around every call a grain receives, in registration order.</summary>
    public static ISiloBuilder AddIncomingGrainCallFilter<TFilter>(this ISiloBuilder silo)
        where TFilter : class, IIncomingGrainCallFilter
    {
        silo.Services.AddSingleton<IIncomingGrainCallFilter, TFilter>();
        return silo;
    }

    /// <summary>Adds a filter that runs around every call made through a grain reference, in registration order.</summary>
    public static ISiloBuilder AddOutgoingGrainCallFilter<TFilter>(this ISiloBuilder silo)
        where TFilter : class, IOutgoingGrainCallFilter
    {
        silo.Services.AddSingleton<IOutgoingGrainCallFilter, TFilter>();
        return silo;
    }

    private static void AddReminderService(IServiceCollection services)
    {
        services.TryAddSingleton<ReminderService>();
        services.TryAddSingleton<IReminderRegistry>(sp => sp.GetRequiredService<ReminderService>());
    }

    private static string DefaultDataDirectory(IServiceProvider services) =>
        Path.Combine(services.GetService<IHostEnvironment>()?.ContentRootPath ?? AppContext.BaseDirectory, "data");

    private sealed class SiloMarker;
}
