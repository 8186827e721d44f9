using System.Net;
using System.Security.Cryptography.X509Certificates;
using CloudEdge.EdgePipeline;
using CloudEdge.Mqtt.Broker;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using CloudEdge.Telemetry;

namespace CloudEdge.EdgeAgent;

/// <summary>
/// Composes the edge agent: configuration (appsettings.json, --config file, environment, flags), the embedded
/// broker on its Kestrel listeners, the pipeline, uplink and OTA services, logs and OTLP telemetry.
/// </summary>
public static class EdgeAgentHost
{
    /// <summary>Short flags for the common settings; anything else as --EdgeAgent:Section:Key=value.</summary>
    internal static readonly Dictionary<string, string> Flags = new()
    {
        ["--gateway-id"] = "EdgeAgent:GatewayId",
        ["--silo-url"] = "EdgeAgent:Uplink:SiloUrl",
        ["--token"] = "EdgeAgent:Uplink:Token",
        ["--token-file"] = "EdgeAgent:Uplink:TokenFile",
        ["--silo-ca"] = "EdgeAgent:Uplink:TrustedCaFile",
        ["--data-dir"] = "EdgeAgent:DataDirectory",
        ["--model-dir"] = "EdgeAgent:ModelDirectory",
        ["--mqtt-port"] = "EdgeAgent:Broker:TcpPort",
        ["--mqtts-port"] = "EdgeAgent:Broker:TlsPort",
        ["--listen"] = "EdgeAgent:Broker:ListenAddress",
        ["--tls-cert"] = "EdgeAgent:Broker:CertificateFile",
        ["--tls-key"] = "EdgeAgent:Broker:CertificateKeyFile",
        ["--users-file"] = "EdgeAgent:Broker:UsersFile",
        ["--acl-file"] = "EdgeAgent:Broker:AclFile",
        ["--window"] = "EdgeAgent:WindowLength",
        ["--config"] = "EdgeAgent:ConfigFile",
    };

    /// <summary>Exported over OTLP when an endpoint is configured (Telemetry/README.md).</summary>
    internal static readonly string[] TelemetrySources = [EdgeTelemetry.Name, "CloudEdge.Mqtt.Broker", "System.Net.Http"];

    internal static readonly string[] TelemetryMeters = [EdgeTelemetry.Name, "CloudEdge.Mqtt", "System.Net.Http", "Microsoft.AspNetCore.Server.Kestrel"];

    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddCommandLine(args, Flags);
        if (builder.Configuration["EdgeAgent:ConfigFile"] is { Length: > 0 } configFile)
        {
            // The --config file overrides appsettings.json; environment variables and flags still override it.
            builder.Configuration.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
            builder.Configuration.AddEnvironmentVariables();
            builder.Configuration.AddCommandLine(args, Flags);
        }
        ResolveModelDirectory(builder.Configuration);

        builder.AddCloudEdgeTelemetry(new TelemetrySettings
        {
            DefaultServiceName = "cloudedge-edge-agent",
            Sources = TelemetrySources,
            Meters = TelemetryMeters,
            ServiceInstanceId = builder.Configuration["EdgeAgent:GatewayId"],
        });

        var broker = builder.Configuration.GetSection("EdgeAgent:Broker").Get<BrokerSettings>() ?? new BrokerSettings();
        builder.Services.AddMqttBroker(o => ConfigureBroker(o, broker));
        // Persistent MQTT sessions and retained messages live in broker.db beside the pipeline's edge.db.
        builder.Services.AddSingleton<IMqttBrokerStore>(sp => new SqliteMqttBrokerStore(
            Path.Combine(sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<EdgePipelineOptions>>().Value.DataDirectory, "broker.db")));
        builder.Services.AddEdgePipeline(builder.Configuration);
        builder.WebHost.ConfigureKestrel(kestrel => ConfigureListeners(kestrel, broker));
        return builder.Build();
    }

    private static void ResolveModelDirectory(ConfigurationManager configuration)
    {
        // A relative model folder that is not under the working directory is looked up beside the agent (the shipped v1).
        var configured = configuration["EdgeAgent:ModelDirectory"] ?? Path.Combine("models", "anomaly", "v1");
        if (!Path.IsPathRooted(configured) && !Directory.Exists(configured))
        {
            configuration["EdgeAgent:ModelDirectory"] = Path.Combine(AppContext.BaseDirectory, configured);
        }
    }

    private static void ConfigureBroker(MqttBrokerOptions options, BrokerSettings settings)
    {
        options.AllowAnonymous = settings.AllowAnonymous;
        if (settings.UsersFile is { } users) MqttBrokerFiles.LoadUsers(users, options);
        foreach (var (user, hash) in settings.Users) options.Users[user] = hash;
        if (settings.AclFile is { } acl)
        {
            MqttBrokerFiles.LoadAcl(acl, options);
        }
        else
        {
            // Default: a device (its user name is its device id) may publish and subscribe only under devices/{id}/.
            options.AclRules.Add(new MqttAclRule { Access = MqttAclAccess.PublishAndSubscribe, Topic = "devices/{username}/#" });
        }
    }

    private static void ConfigureListeners(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions kestrel, BrokerSettings settings)
    {
        var address = IPAddress.Parse(settings.ListenAddress);
        if (settings.TcpPort is > 0 and var tcp) kestrel.Listen(address, tcp, l => l.UseMqtt());
        if (settings.TlsPort is > 0 and var tlsPort)
        {
            var certificate = LoadCertificate(settings);
            X509Certificate2Collection? authorities = null;
            if (settings.ClientCaFile is { } caFile)
            {
                authorities = [];
                authorities.ImportFromPemFile(caFile);
            }
            kestrel.Listen(address, tlsPort, l =>
            {
                l.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = certificate,
                    ClientCertificateMode = authorities is null ? ClientCertificateMode.NoCertificate : ClientCertificateMode.AllowCertificate,
                    ClientCertificateValidation = (cert, _, _) => MqttClientCertificates.IsTrusted(cert, authorities),
                });
                l.UseMqtt();
            });
        }
    }

    private static X509Certificate2 LoadCertificate(BrokerSettings settings)
    {
        var file = settings.CertificateFile ?? throw new InvalidOperationException("EdgeAgent:Broker:TlsPort needs EdgeAgent:Broker:CertificateFile.");
        return settings.CertificateKeyFile is { } key
            ? X509Certificate2.CreateFromPemFile(file, key)
            : X509CertificateLoader.LoadPkcs12FromFile(file, settings.CertificatePassword);
    }
}
