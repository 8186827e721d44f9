using CloudEdge.Postgres;

namespace CloudEdge.Silo.Hosting;

/// <summary>
/// The <c>migrate</c> subcommand: brings the configured PostgreSQL database (Silo:Postgres or
/// ConnectionStrings:Postgres, from appsettings, the environment or <c>--Silo:Postgres</c>) to the platform's
/// schema and exits. The silo runs the same migration at every start.
/// </summary>
internal static class MigrateCommand
{
    public static bool Matches(string[] args) => args.Length > 0 && string.Equals(args[0], "migrate", StringComparison.Ordinal);

    public static async Task<int> RunAsync(string[] args, TextWriter error)
    {
        var builder = WebApplication.CreateBuilder(args[1..]);
        string connectionString;
        try
        {
            connectionString = PostgresSetup.ConnectionString(builder.Configuration);
        }
        catch (InvalidOperationException e)
        {
            await error.WriteLineAsync(e.Message);
            return 2;
        }

        using var logs = LoggerFactory.Create(logging => logging.AddSimpleConsole());
        try
        {
            await PostgresSchema.MigrateAsync(connectionString, logs.CreateLogger("CloudEdge.Silo.Migrate"));
            return 0;
        }
        catch (Exception e) when (StorageFailures.IsUnavailable(e))
        {
            await error.WriteLineAsync($"PostgreSQL is unreachable: {e.Message}");
            return 1;
        }
    }
}
