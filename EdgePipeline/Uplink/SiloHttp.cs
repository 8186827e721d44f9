using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace CloudEdge.EdgePipeline.Uplink;

/// <summary>The HTTP client the uplink and OTA share: base address, TLS trust, the gateway's bearer token.</summary>
public sealed class SiloHttp : IDisposable
{
    private readonly UplinkOptions _options;

    public SiloHttp(UplinkOptions options, string gatewayId)
    {
        if (!Uri.TryCreate(options.SiloUrl, UriKind.Absolute, out var baseUri) || (baseUri.Scheme != Uri.UriSchemeHttps && baseUri.Scheme != Uri.UriSchemeHttp))
        {
            throw new ArgumentException($"EdgeAgent:Uplink:SiloUrl '{options.SiloUrl}' is not an http(s) URL.");
        }
        if (string.IsNullOrWhiteSpace(options.Token) && string.IsNullOrWhiteSpace(options.TokenFile))
        {
            throw new ArgumentException("EdgeAgent:Uplink:Token or EdgeAgent:Uplink:TokenFile is required: the Silo refuses anonymous gateways.");
        }
        _options = options;
        GatewayId = gatewayId;
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AutomaticDecompression = DecompressionMethods.All,
        };
        if (options.TrustedCaFile is { } caFile)
        {
            var authorities = new X509Certificate2Collection();
            authorities.ImportFromPemFile(caFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None) return false;
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(new X509Certificate2(certificate));
            };
        }
        Client = new HttpClient(handler) { BaseAddress = new Uri(baseUri.AbsoluteUri.TrimEnd('/') + "/"), Timeout = Timeout.InfiniteTimeSpan };
    }

    public string GatewayId { get; }
    public HttpClient Client { get; }

    /// <summary>Routes under the gateway's own prefix: <c>api/v1/gateways/{gatewayId}/{path}</c>.</summary>
    public string GatewayPath(string path) => $"api/v1/gateways/{Uri.EscapeDataString(GatewayId)}/{path}";

    public AuthenticationHeaderValue Authorization()
    {
        var token = _options.TokenFile is { } file ? File.ReadAllText(file).Trim() : _options.Token!.Trim();
        return new AuthenticationHeaderValue("Bearer", token);
    }

    public void Dispose() => Client.Dispose();
}
