using Microsoft.Extensions.Configuration;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.TestingHost;

namespace CloudEdge.Testing.Postgres;

/// <summary>
/// Puts an Orleans <see cref="TestClusterBuilder"/> on PostgreSQL through Orleans' ADO.NET providers:
/// membership (instead of the test cluster's in-memory table), grain storage as the default provider, and
/// reminders, all on one database migrated by <see cref="PostgresServer.CreateDatabaseAsync"/>.
/// </summary>
public static class PostgresTestCluster
{
    /// <summary>The ADO.NET invariant Orleans uses for PostgreSQL.</summary>
    public const string Invariant = "Npgsql";

    /// <summary>The configuration key the silo and client configurators read the connection string from.</summary>
    public const string ConnectionStringKey = "CloudEdgeTests:PostgresConnectionString";

    /// <summary>
    /// Configures <paramref name="builder"/> for <paramref name="connectionString"/>. Keep <paramref name="serviceId"/>
    /// to see the same grain state and reminders in a later cluster (a "restart").
    /// </summary>
    public static TestClusterBuilder UsePostgres(this TestClusterBuilder builder, string connectionString, string? serviceId = null)
    {
        builder.Options.UseTestClusterMembership = false;
        builder.Options.ConfigureFileLogging = false;
        if (serviceId is not null)
        {
            builder.Options.ServiceId = serviceId;
        }

        builder.Properties[ConnectionStringKey] = connectionString;
        builder.AddSiloBuilderConfigurator<PostgresSiloConfigurator>();
        builder.AddClientBuilderConfigurator<PostgresClientConfigurator>();
        return builder;
    }
}

/// <summary>A test silo's ADO.NET clustering, default grain storage and reminders on PostgreSQL.</summary>
public sealed class PostgresSiloConfigurator : ISiloConfigurator
{
    public void Configure(ISiloBuilder siloBuilder)
    {
        var connectionString = siloBuilder.Configuration[PostgresTestCluster.ConnectionStringKey]
            ?? throw new InvalidOperationException($"{PostgresTestCluster.ConnectionStringKey} is not configured: use TestClusterBuilder.UsePostgres.");
        siloBuilder.UseAdoNetClustering(options =>
        {
            options.Invariant = PostgresTestCluster.Invariant;
            options.ConnectionString = connectionString;
        });
        siloBuilder.AddAdoNetGrainStorageAsDefault(options =>
        {
            options.Invariant = PostgresTestCluster.Invariant;
            options.ConnectionString = connectionString;
        });
        siloBuilder.UseAdoNetReminderService(options =>
        {
            options.Invariant = PostgresTestCluster.Invariant;
            options.ConnectionString = connectionString;
        });
        siloBuilder.Configure<ReminderOptions>(options => options.MinimumReminderPeriod = TimeSpan.FromSeconds(1));
    }
}

/// <summary>The test cluster client finds its gateways in the ADO.NET membership table.</summary>
public sealed class PostgresClientConfigurator : IClientBuilderConfigurator
{
    public void Configure(IConfiguration configuration, IClientBuilder clientBuilder)
    {
        var connectionString = configuration[PostgresTestCluster.ConnectionStringKey]
            ?? throw new InvalidOperationException($"{PostgresTestCluster.ConnectionStringKey} is not configured: use TestClusterBuilder.UsePostgres.");
        clientBuilder.UseAdoNetClustering(options =>
        {
            options.Invariant = PostgresTestCluster.Invariant;
            options.ConnectionString = connectionString;
        });
    }
}
