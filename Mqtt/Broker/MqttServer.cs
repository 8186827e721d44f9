using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudEdge.Mqtt.Broker;

/// <summary>Where a standalone broker listens.</summary>
public sealed class MqttServerOptions
{
    /// <summary>Plain TCP endpoint; null for none. Port 0 picks a free port (see <see cref="MqttServer.TcpPort"/>).</summary>
    public IPEndPoint? TcpEndPoint { get; set; } = new(IPAddress.Loopback, 1883);

    /// <summary>TLS endpoint; needs <see cref="ServerCertificate"/>.</summary>
    public IPEndPoint? TlsEndPoint { get; set; }

    public X509Certificate2? ServerCertificate { get; set; }

    /// <summary>Client certificates are validated against these roots only (not the machine store).</summary>
    public X509Certificate2Collection? ClientCertificateAuthorities { get; set; }

    public ClientCertificateMode ClientCertificateMode { get; set; } = ClientCertificateMode.AllowCertificate;
}

/// <summary>
/// The broker on its own Kestrel host: what BrokerHost runs and what tests start on free loopback ports.
/// Applications that already have a host use <c>services.AddMqttBroker()</c> and <c>listen.UseMqtt()</c> instead.
/// </summary>
public sealed class MqttServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private MqttServer(WebApplication app, MqttBroker broker, int? tcpPort, int? tlsPort)
    {
        _app = app;
        Broker = broker;
        TcpPort = tcpPort;
        TlsPort = tlsPort;
    }

    public MqttBroker Broker { get; }
    public int? TcpPort { get; }
    public int? TlsPort { get; }
    public IServiceProvider Services => _app.Services;

    public static async Task<MqttServer> StartAsync(
        MqttServerOptions server,
        Action<MqttBrokerOptions>? configureBroker = null,
        Action<IServiceCollection>? configureServices = null,
        Action<ILoggingBuilder>? configureLogging = null,
        CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        configureLogging?.Invoke(builder.Logging);
        builder.Services.AddMqttBroker(configureBroker);
        configureServices?.Invoke(builder.Services);
        ListenOptions? tcp = null, tls = null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (server.TcpEndPoint is { } tcpEndPoint)
            {
                kestrel.Listen(tcpEndPoint, listen =>
                {
                    tcp = listen;
                    listen.UseMqtt();
                });
            }
            if (server.TlsEndPoint is { } tlsEndPoint)
            {
                var certificate = server.ServerCertificate ?? throw new InvalidOperationException("A TLS endpoint needs a server certificate.");
                kestrel.Listen(tlsEndPoint, listen =>
                {
                    tls = listen;
                    listen.UseHttps(new HttpsConnectionAdapterOptions
                    {
                        ServerCertificate = certificate,
                        // Without client CAs no certificate could validate: do not ask for one.
                        ClientCertificateMode = server.ClientCertificateAuthorities is { Count: > 0 } ? server.ClientCertificateMode : ClientCertificateMode.NoCertificate,
                        ClientCertificateValidation = (cert, _, _) => MqttClientCertificates.IsTrusted(cert, server.ClientCertificateAuthorities),
                    });
                    listen.UseMqtt();
                });
            }
        });
        var app = builder.Build();
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        return new MqttServer(app, app.Services.GetRequiredService<MqttBroker>(), (tcp?.EndPoint as IPEndPoint)?.Port, (tls?.EndPoint as IPEndPoint)?.Port);
    }

    public async Task StopAsync(CancellationToken cancellationToken = default) => await _app.StopAsync(cancellationToken).ConfigureAwait(false);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
