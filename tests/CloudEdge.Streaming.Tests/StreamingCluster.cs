using System.Collections.Concurrent;
using System.Globalization;
using CloudEdge.Testing.Postgres;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Orleans.Hosting;
using Orleans.TestingHost;

namespace CloudEdge.Streaming.Tests;

/// <summary>One migrated database on the shared private PostgreSQL instance per test class.</summary>
public sealed class StreamingDatabase : IAsyncLifetime
{
    public string ConnectionString { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        var server = await PostgresServer.SharedAsync();
        ConnectionString = await server.CreateDatabaseAsync("streams");
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

/// <summary>Settings of a test cluster's "platform" stream provider, passed to its silos and client through configuration.</summary>
public sealed record StreamSettings
{
    public const string Prefix = "CloudEdgeTests:Streams:";

    public int QueueCount { get; init; } = 8;

    public int? RetentionMaxEventsPerStream { get; init; }

    public TimeSpan? RetentionMaxAge { get; init; }

    public TimeSpan? RetentionPeriod { get; init; }

    /// <summary>A FakeTimeProvider (see <see cref="TestClocks"/>) to use as the provider's clock.</summary>
    public string? ClockId { get; init; }

    public void WriteTo(IDictionary<string, string?> properties)
    {
        properties[Prefix + nameof(QueueCount)] = QueueCount.ToString(CultureInfo.InvariantCulture);
        if (RetentionMaxEventsPerStream is { } max)
        {
            properties[Prefix + nameof(RetentionMaxEventsPerStream)] = max.ToString(CultureInfo.InvariantCulture);
        }

        if (RetentionMaxAge is { } age)
        {
            properties[Prefix + nameof(RetentionMaxAge)] = age.ToString("c", CultureInfo.InvariantCulture);
        }

        if (RetentionPeriod is { } period)
        {
            properties[Prefix + nameof(RetentionPeriod)] = period.ToString("c", CultureInfo.InvariantCulture);
        }

        if (ClockId is not null)
        {
            properties[Prefix + nameof(ClockId)] = ClockId;
        }
    }

    public static void Apply(IConfiguration configuration, PostgresStreamOptions options)
    {
        options.ConnectionString = configuration[PostgresTestCluster.ConnectionStringKey] ?? string.Empty;
        if (configuration[Prefix + nameof(QueueCount)] is { } queues)
        {
            options.QueueCount = int.Parse(queues, CultureInfo.InvariantCulture);
        }

        if (configuration[Prefix + nameof(RetentionMaxEventsPerStream)] is { } max)
        {
            options.RetentionMaxEventsPerStream = int.Parse(max, CultureInfo.InvariantCulture);
        }

        if (configuration[Prefix + nameof(RetentionMaxAge)] is { } age)
        {
            options.RetentionMaxAge = TimeSpan.Parse(age, CultureInfo.InvariantCulture);
        }

        if (configuration[Prefix + nameof(RetentionPeriod)] is { } period)
        {
            options.RetentionPeriod = TimeSpan.Parse(period, CultureInfo.InvariantCulture);
        }
    }

    public static void AddClock(IConfiguration configuration, IServiceCollection services)
    {
        if (configuration[Prefix + nameof(ClockId)] is { } clockId)
        {
            services.AddKeyedSingleton<TimeProvider>(TestStreams.Provider, TestClocks.Get(clockId));
        }
    }
}

/// <summary>Fake clocks shared by a test and its in-process silos.</summary>
public static class TestClocks
{
    private static readonly ConcurrentDictionary<string, FakeTimeProvider> Clocks = new();

    public static (string Id, FakeTimeProvider Clock) Create()
    {
        var id = Guid.NewGuid().ToString("N");
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));
        Clocks[id] = clock;
        return (id, clock);
    }

    public static FakeTimeProvider Get(string id) => Clocks[id];
}

public sealed class StreamsSiloConfigurator : ISiloConfigurator
{
    public void Configure(ISiloBuilder siloBuilder)
    {
        var configuration = siloBuilder.Configuration;
        siloBuilder.AddAdoNetGrainStorage("PubSubStore", options =>
        {
            options.Invariant = PostgresTestCluster.Invariant;
            options.ConnectionString = configuration[PostgresTestCluster.ConnectionStringKey];
        });
        siloBuilder.AddPostgresStreams(TestStreams.Provider, options => StreamSettings.Apply(configuration, options));
        StreamSettings.AddClock(configuration, siloBuilder.Services);
    }
}

public sealed class StreamsClientConfigurator : IClientBuilderConfigurator
{
    public void Configure(IConfiguration configuration, IClientBuilder clientBuilder)
    {
        clientBuilder.AddPostgresStreams(TestStreams.Provider, options => StreamSettings.Apply(configuration, options));
        StreamSettings.AddClock(configuration, clientBuilder.Services);
    }
}

/// <summary>Test clusters on PostgreSQL with the "platform" stream provider, and views of the stream tables.</summary>
public static class StreamingCluster
{
    public static async Task<TestCluster> StartAsync(string connectionString, int silos = 1, StreamSettings? settings = null, string? serviceId = null)
    {
        var builder = new TestClusterBuilder((short)silos);
        builder.UsePostgres(connectionString, serviceId ?? Guid.NewGuid().ToString("N"));
        (settings ?? new StreamSettings()).WriteTo(builder.Properties);
        builder.AddSiloBuilderConfigurator<StreamsSiloConfigurator>();
        builder.AddClientBuilderConfigurator<StreamsClientConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    /// <summary>The services of a silo in this process (what the Silo's SSE endpoints get): the first one by default.</summary>
    public static IServiceProvider ServicesOf(TestCluster cluster, int silo = 0) => ((InProcessSiloHandle)cluster.Silos[silo]).SiloHost.Services;

    public static IStreamLog LogOf(IServiceProvider services) => services.GetRequiredKeyedService<IStreamLog>(TestStreams.Provider);

    /// <summary>True when every queue's checkpoint has reached its last appended event.</summary>
    public static async Task<bool> AllDeliveredAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            SELECT count(*) FROM cloudedge_stream_queues q
            LEFT JOIN cloudedge_stream_checkpoints c ON c.provider = q.provider AND c.queue_id = q.queue_id
            WHERE COALESCE(c.delivered_seq, 0) < q.last_queue_seq
            """, connection);
        return (long)(await command.ExecuteScalarAsync())! == 0;
    }
}
