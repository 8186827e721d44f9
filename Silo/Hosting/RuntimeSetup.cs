using CloudEdge.Grains;
using CloudEdge.Runtime.Hosting;

namespace CloudEdge.Silo.Hosting;

internal static class RuntimeSetup
{
    /// <summary>Silo:DataDirectory as an absolute path (default "data" under the working directory).</summary>
    public static string DataDirectory(IConfiguration configuration) =>
        Path.GetFullPath(configuration["Silo:DataDirectory"] is { Length: > 0 } configured ? configured : "data");

    /// <summary>
    /// Embeds the runtime: the domain grains and the health probe grain, SQLite grain storage, SQLite
    /// reminders and the durable stream provider of the platform's streams (docs/live.md) in
    /// Silo:DataDirectory (relative paths are relative to the working directory).
    /// </summary>
    public static void AddSiloRuntime(this WebApplicationBuilder builder)
    {
        var dataDirectory = DataDirectory(builder.Configuration);
        var retention = builder.Configuration.GetSection("Streams:Platform");
        var maxAge = retention.GetValue("RetentionMaxAge", TimeSpan.FromDays(7));
        var maxEvents = retention.GetValue("RetentionMaxEventsPerStream", 10_000L);
        builder.UseSilo(silo =>
        {
            silo.AddGrains(typeof(UserGrain).Assembly);
            silo.AddGrains(typeof(HealthProbeGrain).Assembly);
            silo.AddSqliteGrainStorage(configure: o => o.DataDirectory = dataDirectory);
            silo.UseSqliteReminderService(o => o.DataDirectory = dataDirectory);
            silo.AddSqliteStreams(PlatformStreams.Provider, o =>
            {
                o.DataDirectory = dataDirectory;
                o.RetentionMaxAge = maxAge;
                o.RetentionMaxEventsPerStream = maxEvents;
            });
        });
    }
}
