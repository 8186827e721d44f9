using CloudEdge.Silo.Live;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CloudEdge.Silo.Auth;

internal static class AuthenticationSetup
{
    /// <summary>
    /// JWT bearer authentication with an HMAC key from configuration. The options are validated when the
    /// host starts (<see cref="AuthOptionsValidator"/>): outside Development the silo refuses to start
    /// without a key of at least 256 bits; appsettings.Development.json carries a well-known development key.
    /// </summary>
    public static void AddSiloAuthentication(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<AuthOptions>().Bind(builder.Configuration.GetSection(AuthOptions.Section)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<AuthOptions>, AuthOptionsValidator>();
        builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer();
        builder.Services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme).Configure<IOptions<AuthOptions>>((jwt, auth) =>
        {
            var options = auth.Value;
            jwt.MapInboundClaims = false;
            jwt.RequireHttpsMetadata = false;
            jwt.Events = new JwtBearerEvents { OnMessageReceived = QueryTokenOnLivePaths };
            jwt.TokenValidationParameters = new TokenValidationParameters
            {
                ValidateIssuer = true,
                ValidIssuer = options.Issuer,
                ValidateAudience = true,
                ValidAudience = options.Audience,
                ValidateIssuerSigningKey = true,
                IssuerSigningKey = new SymmetricSecurityKey(options.KeyBytes()),
                ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
                ValidateLifetime = true,
                RequireExpirationTime = true,
                ClockSkew = options.ClockSkew,
                NameClaimType = JwtRegisteredClaimNames.Sub,
                RoleClaimType = "role",
            };
        });
        builder.Services.AddAuthorization();

        // ASP.NET Core's "Request starting/finished" records (Information) carry the query string, and with it a
        // live route's ?access_token=. Rules added here come after the configuration's, so at equal specificity
        // they win: raising Microsoft.AspNetCore to Information for debugging does not put tokens in the logs.
        builder.Logging.AddFilter(HostingDiagnosticsCategory, level => level >= LogLevel.Warning);
    }

    /// <summary>The log category of ASP.NET Core's per-request records, which include the full URL.</summary>
    public const string HostingDiagnosticsCategory = "Microsoft.AspNetCore.Hosting.Diagnostics";

    /// <summary>
    /// Browsers' EventSource cannot send an Authorization header, so the live (Server-Sent Events) routes,
    /// and only they, also take the token as <c>?access_token=</c>. A header, when sent, wins.
    /// </summary>
    private static Task QueryTokenOnLivePaths(MessageReceivedContext context)
    {
        if (context.Request.Path.StartsWithSegments(LiveEndpoints.PathPrefix, StringComparison.Ordinal)
            && context.Request.Headers.Authorization.Count == 0
            && context.Request.Query["access_token"] is [{ Length: > 0 } token])
        {
            context.Token = token;
        }

        return Task.CompletedTask;
    }
}
