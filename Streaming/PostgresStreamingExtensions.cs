using CloudEdge.Streaming;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace Orleans.Hosting;

/// <summary>Registers the platform's durable stream provider on PostgreSQL.</summary>
public static class PostgresStreamingExtensions
{
    // With notifications the receiver long-polls (waits for a NOTIFY up to PollInterval inside the read), so
    // the agent's own timer only needs to re-arm quickly between reads.
    private static readonly TimeSpan NotifiedPumpPeriod = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// A persistent stream provider named <paramref name="name"/> whose queues and log are PostgreSQL tables
    /// (created by the Postgres migrator, script 0500_streams.sql), and its <see cref="IStreamLog"/> as a keyed
    /// singleton under the same name. Explicit subscriptions need Orleans' "PubSubStore" grain storage.
    /// </summary>
    public static ISiloBuilder AddPostgresStreams(this ISiloBuilder builder, string name, Action<PostgresStreamOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        AddServices(builder.Services, name, configure);
        return builder.AddPersistentStreams(name, PostgresQueueAdapterFactory.Create, streams =>
            streams.ConfigurePullingAgent(agent => agent.Configure<IOptionsMonitor<PostgresStreamOptions>>((pulling, monitor) =>
            {
                var options = monitor.Get(name);
                pulling.GetQueueMsgsTimerPeriod = options.UseNotifications ? NotifiedPumpPeriod : options.PollInterval;
            })));
    }

    /// <summary>The same provider for an external cluster client: it publishes (and reads the log); silos deliver.</summary>
    public static IClientBuilder AddPostgresStreams(this IClientBuilder builder, string name, Action<PostgresStreamOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        AddServices(builder.Services, name, configure);
        return builder.AddPersistentStreams(name, PostgresQueueAdapterFactory.Create, _ => { });
    }

    private static void AddServices(IServiceCollection services, string name, Action<PostgresStreamOptions> configure)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<PostgresStreamOptions>(name).Configure(configure).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PostgresStreamOptions>, PostgresStreamOptionsValidator>());
        services.TryAddSingleton(sp => new StreamingInstruments(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.AddKeyedSingleton(name, (sp, _) =>
            new PostgresStreamStore(name, sp.GetRequiredService<IOptionsMonitor<PostgresStreamOptions>>().Get(name).ConnectionString));
        services.AddKeyedSingleton(name, (sp, _) =>
            new QueueNotifications(sp.GetRequiredKeyedService<PostgresStreamStore>(name), sp.GetRequiredService<ILogger<QueueNotifications>>()));
        services.AddKeyedSingleton<IStreamLog>(name, (sp, _) =>
            new PostgresStreamLog(sp.GetRequiredKeyedService<PostgresStreamStore>(name), sp.GetRequiredService<Orleans.Serialization.Serializer>()));
    }

    /// <summary>The provider's clock: a <see cref="TimeProvider"/> keyed by its name if one is registered (tests), else the host's.</summary>
    internal static TimeProvider GetStreamingTimeProvider(this IServiceProvider services, string name) =>
        services.GetKeyedService<TimeProvider>(name) ?? services.GetService<TimeProvider>() ?? TimeProvider.System;
}
