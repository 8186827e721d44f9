using CloudEdge.Streaming;
using System.Net;
using System.Net.Sockets;
using CloudEdge.Grains;
using Orleans.Configuration;
using Orleans.Dashboard;
using Orleans.Serialization;
using Orleans.Storage;

namespace CloudEdge.Silo.Hosting;

/// <summary>Where the silo listens for other silos, bound from "Silo" (0: a free loopback port chosen at start).</summary>
public sealed class SiloEndpointOptions
{
    public const string Section = "Silo";

    public int SiloPort { get; set; }

    /// <summary>The port for external Orleans clients; 0 runs without a gateway (the API's client is in process).</summary>
    public int GatewayPort { get; set; }

    public string ClusterId { get; set; } = "cloudedge";

    public string ServiceId { get; set; } = "cloudedge";

    /// <summary>The address other silos reach this one at: an IP, or "auto" for Orleans' choice (a container's address). Default: 127.0.0.1.</summary>
    public string AdvertisedAddress { get; set; } = "127.0.0.1";
}

internal static class OrleansSetup
{
    /// <summary>Silo:DataDirectory as an absolute path (default "data" under the working directory): the model blobs.</summary>
    public static string DataDirectory(IConfiguration configuration) =>
        Path.GetFullPath(configuration["Silo:DataDirectory"] is { Length: > 0 } configured ? configured : "data");

    /// <summary>
    /// Hosts Orleans next to the API: the domain grains and the health probe grain, grain storage
    /// <see cref="PlatformStorage.Name"/>, reminders, the stream provider of the platform's streams
    /// (docs/live.md), and Orleans' activity propagation so grain calls join the request's trace.
    /// </summary>
    public static void AddSiloOrleans(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<DevicePresenceOptions>()
            .Bind(builder.Configuration.GetSection(DevicePresenceOptions.Section))
            .Validate(o => o.OfflineAfter > TimeSpan.Zero, "Devices:OfflineAfter must be positive.")
            .ValidateOnStart();
        var endpoint = builder.Configuration.GetSection(SiloEndpointOptions.Section).Get<SiloEndpointOptions>() ?? new SiloEndpointOptions();
        var connectionString = PostgresSetup.ConnectionString(builder.Configuration);
        // Registered ahead of Orleans' own hosted service: the schema is there before the silo joins the cluster.
        builder.Services.AddSingleton<PostgresReadiness>();
        builder.Services.AddHostedService<PostgresMigration>();
        builder.UseOrleans(silo =>
        {
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = endpoint.ClusterId;
                o.ServiceId = endpoint.ServiceId;
            });
            silo.Configure<EndpointOptions>(o =>
            {
                if (!string.Equals(endpoint.AdvertisedAddress, "auto", StringComparison.OrdinalIgnoreCase))
                {
                    o.AdvertisedIPAddress = IPAddress.Parse(endpoint.AdvertisedAddress);
                }

                o.SiloPort = endpoint.SiloPort > 0 ? endpoint.SiloPort : RememberedPort(DataDirectory(builder.Configuration));
                o.GatewayPort = endpoint.GatewayPort;
            });
            // Membership, grain state (also the stream subscriptions' "PubSubStore") and reminders on PostgreSQL, even for one silo.
            silo.UseAdoNetClustering(o =>
            {
                o.Invariant = PostgresSetup.Invariant;
                o.ConnectionString = connectionString;
            });
            foreach (var storage in new[] { PlatformStorage.Name, "PubSubStore" })
            {
                // Orleans' own serializer, not the JSON default: state is read by the [Id]s of its fields, so
                // another version of a grain (a rolling upgrade) reads it, and aliases survive type renames.
                silo.AddAdoNetGrainStorage(storage, options => options.Configure<Serializer>((o, serializer) =>
                {
                    o.Invariant = PostgresSetup.Invariant;
                    o.ConnectionString = connectionString;
                    o.GrainStorageSerializer = new OrleansGrainStorageSerializer(serializer);
                }));
            }

            silo.UseAdoNetReminderService(o =>
            {
                o.Invariant = PostgresSetup.Invariant;
                o.ConnectionString = connectionString;
            });
            // The platform's streams and their replayable log, in the same database (docs/live.md). The provider polls
            // on the system clock even when the host's TimeProvider is controlled (tests move grain time only).
            silo.Services.AddKeyedSingleton(PlatformStreams.Provider, TimeProvider.System);
            var retention = builder.Configuration.GetSection("Streams:Platform");
            silo.AddPostgresStreams(PlatformStreams.Provider, o =>
            {
                o.ConnectionString = connectionString;
                o.RetentionMaxAge = retention.GetValue("RetentionMaxAge", o.RetentionMaxAge);
                o.RetentionMaxEventsPerStream = retention.GetValue("RetentionMaxEventsPerStream", o.RetentionMaxEventsPerStream);
            });
            silo.AddActivityPropagation();
            silo.AddDashboard();
        });
    }

    /// <summary>
    /// The silo port this data directory used last, else a free one, remembered in <c>silo-port</c>: a silo that
    /// comes back on its old address (after a crash, say) replaces its dead entry in the membership table at
    /// once, instead of waiting for the cluster to vote it dead.
    /// </summary>
    private static int RememberedPort(string dataDirectory)
    {
        var file = Path.Combine(dataDirectory, "silo-port");
        if (File.Exists(file) && int.TryParse(File.ReadAllText(file).Trim(), out var remembered) && remembered is > 0 and < 65536 && IsFree(remembered))
        {
            return remembered;
        }

        var port = FreeLoopbackPort();
        Directory.CreateDirectory(dataDirectory);
        File.WriteAllText(file, port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return port;
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>A port that was free a moment ago: Orleans needs the number it advertises before it binds.</summary>
    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
