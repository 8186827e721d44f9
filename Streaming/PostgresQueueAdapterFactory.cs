using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Providers.Streams.Common;
using Orleans.Serialization;
using Orleans.Streams;

namespace CloudEdge.Streaming;

/// <summary>
/// What Orleans' persistent stream provider asks of a queue system, for PostgreSQL: the adapter, the hash
/// ring of <see cref="PostgresStreamOptions.QueueCount"/> queues, and Orleans' simple in-memory queue cache.
/// </summary>
internal sealed class PostgresQueueAdapterFactory : IQueueAdapterFactory
{
    private readonly PostgresQueueAdapter adapter;
    private readonly HashRingBasedStreamQueueMapper queueMapper;
    private readonly SimpleQueueAdapterCache cache;

    private PostgresQueueAdapterFactory(string name, IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptionsMonitor<PostgresStreamOptions>>().Get(name);
        var loggerFactory = services.GetRequiredService<ILoggerFactory>();
        queueMapper = new HashRingBasedStreamQueueMapper(new HashRingStreamQueueMapperOptions { TotalQueueCount = options.QueueCount }, name);
        cache = new SimpleQueueAdapterCache(services.GetRequiredService<IOptionsMonitor<SimpleQueueCacheOptions>>().Get(name), name, loggerFactory);
        adapter = new PostgresQueueAdapter(
            name,
            options,
            services.GetRequiredKeyedService<PostgresStreamStore>(name),
            options.UseNotifications ? services.GetRequiredKeyedService<QueueNotifications>(name) : null,
            queueMapper,
            services.GetRequiredService<Serializer>(),
            services.GetStreamingTimeProvider(name),
            services.GetRequiredService<StreamingInstruments>(),
            loggerFactory);
    }

    /// <summary>The factory <c>AddPersistentStreams</c> calls for the provider named <paramref name="name"/>.</summary>
    public static IQueueAdapterFactory Create(IServiceProvider services, string name) => new PostgresQueueAdapterFactory(name, services);

    public Task<IQueueAdapter> CreateAdapter() => Task.FromResult<IQueueAdapter>(adapter);

    public IQueueAdapterCache GetQueueAdapterCache() => cache;

    public IStreamQueueMapper GetStreamQueueMapper() => queueMapper;

    // Orleans' default: a failed delivery is logged by the agent and the subscription stays.
    public Task<IStreamFailureHandler> GetDeliveryFailureHandler(QueueId queueId) =>
        Task.FromResult<IStreamFailureHandler>(new NoOpStreamDeliveryFailureHandler(false));
}
