using CloudEdge.Grains;
using CloudEdge.Runtime.Hosting;

namespace CloudEdge.Silo.Hosting;

internal static class RuntimeSetup
{
    /// <summary>
    /// Embeds the runtime: the domain grains and the health probe grain, SQLite grain storage and
    /// SQLite reminders in Silo:DataDirectory (relative paths are relative to the working directory).
    /// </summary>
    /// <summary>Silo:DataDirectory as an absolute path (default "data" under the working directory).</summary>
    public static string DataDirectory(IConfiguration configuration) =>
        Path.GetFullPath(configuration["Silo:DataDirectory"] is { Length: > 0 } configured ? configured : "data");

    public static void AddSiloRuntime(this WebApplicationBuilder builder)
    {
        var dataDirectory = DataDirectory(builder.Configuration);
        builder.UseSilo(silo =>
        {
            silo.AddGrains(typeof(UserGrain).Assembly);
            silo.AddGrains(typeof(HealthProbeGrain).Assembly);
            silo.AddSqliteGrainStorage(configure: o => o.DataDirectory = dataDirectory);
            silo.UseSqliteReminderService(o => o.DataDirectory = dataDirectory);
        });
    }
}
