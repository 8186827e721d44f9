using System.Security.Claims;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CloudEdge.Silo.Auth;

/// <summary>Mints HMAC-signed JWTs the silo accepts: for the token command, local use and tests.</summary>
public static class TokenIssuer
{
    public static string Mint(
        byte[] key,
        string issuer,
        string audience,
        string subject,
        IEnumerable<string> roles,
        DateTimeOffset notBefore,
        DateTimeOffset expires)
    {
        ArgumentException.ThrowIfNullOrEmpty(subject);
        var claims = new List<Claim> { new(JwtRegisteredClaimNames.Sub, subject) };
        claims.AddRange(roles.Distinct(StringComparer.Ordinal).Select(role => new Claim("role", role)));
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            Subject = new ClaimsIdentity(claims),
            IssuedAt = notBefore.UtcDateTime,
            NotBefore = notBefore.UtcDateTime,
            Expires = expires.UtcDateTime,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(key), SecurityAlgorithms.HmacSha256),
        };
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);
    }
}
