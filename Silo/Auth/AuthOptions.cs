using System.Text;

namespace CloudEdge.Silo.Auth;

/// <summary>JWT bearer settings, bound from the "Auth" configuration section.</summary>
public sealed class AuthOptions
{
    public const string Section = "Auth";

    /// <summary>HMAC-SHA256 needs a key of at least 256 bits.</summary>
    public const int MinKeyBytes = 32;

    /// <summary>The HMAC signing key: UTF-8 text of at least 32 bytes, or "base64:" followed by at least 32 bytes in base64.</summary>
    public string? SigningKey { get; set; }

    public string Issuer { get; set; } = "cloudedge";

    public string Audience { get; set; } = "cloudedge-api";

    /// <summary>How long minted tokens are valid by default.</summary>
    public TimeSpan TokenLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The most clock difference a silo may be told to tolerate: beyond it an expired token lives on too long.</summary>
    public static readonly TimeSpan MaxClockSkew = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Tolerated clock difference between issuer and silo when checking expiry and not-before. Tokens are
    /// minted by the silos themselves (or an issuer on NTP time), so a few seconds cover the drift;
    /// ASP.NET Core's default of five minutes would keep a revoked-by-expiry token usable that long.
    /// </summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The key bytes, which <see cref="AuthOptionsValidator"/> has checked at start.</summary>
    public byte[] KeyBytes() => DecodeKey(SigningKey, out var problem) ?? throw new InvalidOperationException(problem);

    /// <summary>The key bytes, or null with the reason when the key is missing, malformed or too short.</summary>
    public static byte[]? DecodeKey(string? signingKey, out string? problem)
    {
        if (string.IsNullOrWhiteSpace(signingKey))
        {
            problem = "Auth:SigningKey is not set.";
            return null;
        }

        byte[] bytes;
        if (signingKey.StartsWith("base64:", StringComparison.Ordinal))
        {
            try
            {
                bytes = Convert.FromBase64String(signingKey["base64:".Length..]);
            }
            catch (FormatException)
            {
                problem = "Auth:SigningKey starts with 'base64:' but is not valid base64.";
                return null;
            }
        }
        else
        {
            bytes = Encoding.UTF8.GetBytes(signingKey);
        }

        if (bytes.Length < MinKeyBytes)
        {
            problem = $"Auth:SigningKey is {bytes.Length} bytes; HMAC-SHA256 needs at least {MinKeyBytes}.";
            return null;
        }

        problem = null;
        return bytes;
    }
}
