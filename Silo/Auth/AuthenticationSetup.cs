using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CloudEdge.Silo.Auth;

internal static class AuthenticationSetup
{
    /// <summary>
    /// JWT bearer authentication with an HMAC key from configuration. Outside Development the silo
    /// refuses to start without a key of at least 256 bits; in Development a missing key is an error
    /// too, but appsettings.Development.json carries a well-known development key.
    /// </summary>
    public static void AddSiloAuthentication(this WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(AuthOptions.Section).Get<AuthOptions>() ?? new AuthOptions();
        var key = AuthOptions.DecodeKey(options.SigningKey, out var problem)
            ?? throw new InvalidOperationException(
                $"{problem} The silo does not start without a signing key: set Auth:SigningKey (or the Auth__SigningKey environment variable) to at least {AuthOptions.MinKeyBytes} bytes.");

        builder.Services.Configure<AuthOptions>(builder.Configuration.GetSection(AuthOptions.Section));
        builder.Services
            .AddAuthentication(JwtBearerDefaults.AuthenticationScheme)
            .AddJwtBearer(jwt =>
            {
                jwt.MapInboundClaims = false;
                jwt.RequireHttpsMetadata = false;
                jwt.TokenValidationParameters = new TokenValidationParameters
                {
                    ValidateIssuer = true,
                    ValidIssuer = options.Issuer,
                    ValidateAudience = true,
                    ValidAudience = options.Audience,
                    ValidateIssuerSigningKey = true,
                    IssuerSigningKey = new SymmetricSecurityKey(key),
                    ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
                    ValidateLifetime = true,
                    RequireExpirationTime = true,
                    ClockSkew = options.ClockSkew,
                    NameClaimType = JwtRegisteredClaimNames.Sub,
                    RoleClaimType = "role",
                };
            });
        builder.Services.AddAuthorization();
    }
}
