using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Net.Http.Headers;

namespace CloudEdge.Dashboard;

/// <summary>Serves the dashboard at /dashboard/ (and sends / there).</summary>
public static class DashboardEndpoints
{
    public const string BasePath = "/dashboard/";

    internal const string IndexPath = "index.html";

    // Everything the page loads is its own: scripts and styles from files only (no inline code, so an
    // injected string can never run), data only from the same origin (REST and SSE), no framing.
    internal const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    /// <summary>
    /// Maps the dashboard's static files. They carry no data, so they need no token; every data call the
    /// page makes carries one.
    /// </summary>
    public static IEndpointConventionBuilder MapDashboard(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var assets = DashboardAssets.Shared;
        var group = endpoints.MapGroup("").AllowAnonymous().ExcludeFromDescription();
        group.MapGet("/", () => TypedResults.Redirect(BasePath));
        group.MapMethods(BasePath + "{**path}", [HttpMethods.Get, HttpMethods.Head], (HttpContext http, string? path) =>
        {
            if (string.IsNullOrEmpty(path) && http.Request.Path.Value?.EndsWith('/') != true)
            {
                // The page's relative URLs (app.js, style.css) resolve under /dashboard/ only with the slash.
                http.Response.Redirect(BasePath);
                return Task.CompletedTask;
            }

            return Serve(http, assets.Find(string.IsNullOrEmpty(path) ? IndexPath : path));
        });
        return group;
    }

    private static Task Serve(HttpContext http, DashboardAsset? asset)
    {
        var response = http.Response;
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
        response.Headers["Referrer-Policy"] = "no-referrer";
        response.Headers["Cross-Origin-Opener-Policy"] = "same-origin";
        if (asset is null)
        {
            response.StatusCode = StatusCodes.Status404NotFound;
            return Task.CompletedTask;
        }

        // Files change only with a new build: the browser revalidates each load with the ETag and gets a 304.
        response.Headers.CacheControl = "no-cache";
        response.Headers.ETag = asset.ETag;
        if (IfNoneMatchHits(http.Request, asset.ETag))
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return Task.CompletedTask;
        }

        response.ContentType = asset.ContentType;
        response.ContentLength = asset.Content.Length;
        return HttpMethods.IsHead(http.Request.Method)
            ? Task.CompletedTask
            : response.Body.WriteAsync(asset.Content, http.RequestAborted).AsTask();
    }

    private static bool IfNoneMatchHits(HttpRequest request, string etag)
    {
        var header = request.GetTypedHeaders().IfNoneMatch;
        if (header is null)
        {
            return false;
        }

        var current = new EntityTagHeaderValue(etag);
        return header.Any(candidate => candidate.Equals(EntityTagHeaderValue.Any) || candidate.Compare(current, useStrongComparison: false));
    }
}
