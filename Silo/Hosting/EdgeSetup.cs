using CloudEdge.Grains;
using CloudEdge.Silo.Edge;

namespace CloudEdge.Silo.Hosting;

internal static class EdgeSetup
{
    /// <summary>
    /// What the gateway routes need: their limits ("Edge"), device presence ("Devices:OfflineAfter",
    /// read by the device grains), the model blob store under the data directory and the long-poll signal.
    /// </summary>
    public static void AddSiloEdge(this WebApplicationBuilder builder)
    {
        builder.Services.Configure<EdgeOptions>(builder.Configuration.GetSection(EdgeOptions.Section));
        builder.Services.AddSingleton(new ModelBlobStore(OrleansSetup.DataDirectory(builder.Configuration)));
        builder.Services.AddSingleton<DesiredChangeSignal>();
    }
}
