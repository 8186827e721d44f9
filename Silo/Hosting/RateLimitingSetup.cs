using System.Globalization;
using System.Threading.RateLimiting;
using CloudEdge.Silo.Auth;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace CloudEdge.Silo.Hosting;

/// <summary>Per-client limits, bound from the "RateLimiting" configuration section.</summary>
public sealed class RateLimitingOptions
{
    public const string Section = "RateLimiting";

    public bool Enabled { get; set; } = true;

    /// <summary>Requests a client may make per window.</summary>
    public int PermitLimit { get; set; } = 1200;

    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>
/// A fixed window per client: the token's subject when authenticated, the remote IP otherwise.
/// Refusals are 429 with Retry-After (whole seconds until the window resets) and a ProblemDetails body.
/// </summary>
internal static class RateLimitingSetup
{
    public const string ApiPolicy = "api";

    public static void AddSiloRateLimiting(this WebApplicationBuilder builder)
    {
        builder.Services.Configure<RateLimitingOptions>(builder.Configuration.GetSection(RateLimitingOptions.Section));
        builder.Services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.AddPolicy(ApiPolicy, http =>
            {
                var options = http.RequestServices.GetRequiredService<IOptions<RateLimitingOptions>>().Value;
                if (!options.Enabled)
                {
                    return RateLimitPartition.GetNoLimiter("off");
                }

                var subject = http.User.Identity?.IsAuthenticated == true ? Caller.From(http.User).Subject : null;
                var key = subject is { Length: > 0 } ? "sub:" + subject : "ip:" + http.Connection.RemoteIpAddress;
                return RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions
                {
                    PermitLimit = Math.Max(1, options.PermitLimit),
                    Window = options.Window > TimeSpan.Zero ? options.Window : TimeSpan.FromMinutes(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
            limiter.OnRejected = async (context, cancellationToken) =>
            {
                var http = context.HttpContext;
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait)
                    ? wait
                    : http.RequestServices.GetRequiredService<IOptions<RateLimitingOptions>>().Value.Window;
                var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
                http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                http.RequestServices.GetRequiredService<SiloMetrics>().RecordRateLimited();
                var problem = new ProblemDetails
                {
                    Status = StatusCodes.Status429TooManyRequests,
                    Title = "Too many requests",
                    Detail = $"This client's request limit is used up; retry in {seconds} s.",
                };
                problem.Extensions["code"] = "rate_limited";
                await http.RequestServices.GetRequiredService<IProblemDetailsService>()
                    .TryWriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = problem });
            };
        });
    }
}
