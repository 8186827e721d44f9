namespace CloudEdge.EdgeAgent;

/// <summary>The embedded MQTT broker's listeners and access (configuration section <c>EdgeAgent:Broker</c>).</summary>
internal sealed class BrokerSettings
{
    /// <summary>Address the listeners bind (0.0.0.0 on a gateway; 127.0.0.1 in tests).</summary>
    public string ListenAddress { get; set; } = "0.0.0.0";
    /// <summary>Plain MQTT port; null or 0 disables it (then devices must use TLS).</summary>
    public int? TcpPort { get; set; } = 1883;
    /// <summary>MQTT over TLS port; needs <see cref="CertificateFile"/>. Null disables it.</summary>
    public int? TlsPort { get; set; }
    /// <summary>Server certificate: a PEM certificate (with <see cref="CertificateKeyFile"/>) or a PFX (with <see cref="CertificatePassword"/>).</summary>
    public string? CertificateFile { get; set; }
    public string? CertificateKeyFile { get; set; }
    public string? CertificatePassword { get; set; }
    /// <summary>PEM bundle of CAs whose client certificates authenticate devices (mTLS); none: passwords only.</summary>
    public string? ClientCaFile { get; set; }
    /// <summary>Users file: one <c>username:pbkdf2-sha256$...</c> per line (MqttPasswordHasher).</summary>
    public string? UsersFile { get; set; }
    /// <summary>Users inline: user name to password hash.</summary>
    public Dictionary<string, string> Users { get; set; } = [];
    /// <summary>ACL file (<c>publish|subscribe|all user|* pattern</c>); none: each device may use only devices/{username}/#.</summary>
    public string? AclFile { get; set; }
    public bool AllowAnonymous { get; set; }
}
