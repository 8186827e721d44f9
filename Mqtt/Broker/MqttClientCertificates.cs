using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace CloudEdge.Mqtt.Broker;

/// <summary>How the broker trusts a device's client certificate (mTLS): it must chain to one of the configured device CAs.</summary>
public static class MqttClientCertificates
{
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    /// <summary>
    /// True when <paramref name="certificate"/> chains to one of <paramref name="authorities"/> (the system store is not
    /// consulted) and is valid for client authentication. No authorities: no certificate is trusted.
    /// </summary>
    public static bool IsTrusted(X509Certificate2 certificate, X509Certificate2Collection? authorities)
    {
        if (authorities is null || authorities.Count == 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        // Device CAs are private and offline: there is no revocation endpoint to ask.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(ClientAuthentication);
        return chain.Build(certificate);
    }
}
