using CloudEdge.Postgres;

namespace CloudEdge.Silo.Hosting;

/// <summary>Where the platform's PostgreSQL is: <c>Silo:Postgres</c>, else <c>ConnectionStrings:Postgres</c>.</summary>
internal static class PostgresSetup
{
    /// <summary>The ADO.NET invariant of Orleans' providers for PostgreSQL.</summary>
    public const string Invariant = "Npgsql";

    public static string ConnectionString(IConfiguration configuration) =>
        configuration["Silo:Postgres"] is { Length: > 0 } configured ? configured
        : configuration.GetConnectionString("Postgres") is { Length: > 0 } named ? named
        : throw new InvalidOperationException(
            "No PostgreSQL connection string: set Silo:Postgres (environment Silo__Postgres) or ConnectionStrings:Postgres. tools/run-platform.sh starts a private instance.");
}

/// <summary>
/// Brings the database to the platform's schema before Orleans starts (registered ahead of it). A PostgreSQL
/// that does not answer is retried, 1 s doubling to 30 s, with a warning each time, until it does or the host
/// stops: meanwhile the web server is up and /health/ready answers 503 with the reason.
/// </summary>
internal sealed partial class PostgresMigration(IConfiguration configuration, PostgresReadiness readiness, ILogger<PostgresMigration> logger) : IHostedService
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxRetry = TimeSpan.FromSeconds(30);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var connectionString = PostgresSetup.ConnectionString(configuration);
        var delay = FirstRetry;
        while (true)
        {
            try
            {
                await PostgresSchema.MigrateAsync(connectionString, logger, cancellationToken);
                readiness.Migrated();
                return;
            }
            catch (Exception e) when (StorageFailures.IsUnavailable(e) && !cancellationToken.IsCancellationRequested)
            {
                readiness.Failed(e.Message);
                LogUnreachable(logger, e, delay.TotalSeconds);
                await Task.Delay(delay, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetry.Ticks));
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "PostgreSQL is unreachable, so the silo cannot start Orleans; not ready, retrying in {Seconds} s")]
    private static partial void LogUnreachable(ILogger logger, Exception exception, double seconds);
}

/// <summary>Whether the schema migration at start has succeeded, and the last failure while it has not.</summary>
internal sealed class PostgresReadiness
{
    private volatile string? failure = "PostgreSQL schema migration has not run yet.";

    public string? Failure => failure;

    public void Migrated() => failure = null;

    public void Failed(string reason) => failure = "PostgreSQL is unreachable: " + reason;
}
