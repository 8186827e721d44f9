using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace CloudEdge.Mqtt.Tests;

/// <summary>A throwaway CA with a server certificate (127.0.0.1, localhost) and a client certificate, also as PEM files.</summary>
internal sealed class TestCertificates : IDisposable
{
    public TestCertificates(string clientCommonName = "device-7")
    {
        Directory = Path.Combine(Path.GetTempPath(), "cloudedge-mqtt-certs-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
        var now = DateTimeOffset.UtcNow;

        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=CloudEdge Test CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        Authority = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));

        Server = Issue("CN=localhost", "1.3.6.1.5.5.7.3.1", san =>
        {
            san.AddIpAddress(IPAddress.Loopback);
            san.AddDnsName("localhost");
        }, "server");
        Client = Issue("CN=" + clientCommonName, "1.3.6.1.5.5.7.3.2", null, "client");
        File.WriteAllText(AuthorityPem, Authority.ExportCertificatePem());
    }

    public string Directory { get; }
    public X509Certificate2 Authority { get; }
    public X509Certificate2 Server { get; }
    public X509Certificate2 Client { get; }
    public string AuthorityPem => Path.Combine(Directory, "ca.pem");
    public string ClientCertPem => Path.Combine(Directory, "client.pem");
    public string ClientKeyPem => Path.Combine(Directory, "client.key");

    private X509Certificate2 Issue(string subject, string usageOid, Action<SubjectAlternativeNameBuilder>? san, string fileName)
    {
        var key = RSA.Create(2048);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usageOid)], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Authority, true, false));
        if (san is not null)
        {
            var builder = new SubjectAlternativeNameBuilder();
            san(builder);
            request.CertificateExtensions.Add(builder.Build());
        }
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        var now = DateTimeOffset.UtcNow;
        using var issued = request.Create(Authority, now.AddDays(-1), now.AddDays(10), serial);
        File.WriteAllText(Path.Combine(Directory, fileName + ".pem"), issued.ExportCertificatePem());
        File.WriteAllText(Path.Combine(Directory, fileName + ".key"), key.ExportPkcs8PrivateKeyPem());
        // Round-trip through PKCS#12 so SslStream gets a certificate with a usable private key on every platform.
        using var withKey = issued.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
