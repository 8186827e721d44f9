using System.Text.Json.Serialization;
using CloudEdge.Dashboard;
using CloudEdge.Silo.Api;
using CloudEdge.Silo.Auth;
using CloudEdge.Silo.Hosting;
using CloudEdge.Silo.Live;
using Orleans.Dashboard;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CloudEdge.Silo;

/// <summary>Composes the silo: the runtime with the grains, and the HTTP API in front of them.</summary>
internal static class SiloApplication
{
    public const string OrleansDashboardPath = "/orleans";

    /// <param name="configureServices">Runs last, so tests can replace services (a controlled TimeProvider, say).</param>
    public static WebApplication Build(string[] args, Action<IServiceCollection>? configureServices = null)
    {
        var builder = WebApplication.CreateBuilder(args);

        builder.AddSiloTelemetry();
        builder.AddSiloAuthentication();
        builder.AddSiloPolicies();
        builder.AddSiloRateLimiting();
        builder.AddSiloOrleans();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.AddSiloEdge();
        builder.AddSiloLive();

        builder.Services.Configure<JsonOptions>(o =>
        {
            o.SerializerOptions.Converters.Add(new JsonStringEnumConverter());
            o.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
        });
        // Malformed bodies throw BadHttpRequestException, which the exception handler answers with a 400 problem.
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        // Problems written without a domain exception (routing's 404/405/415, say) still carry a stable code.
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = context =>
            context.ProblemDetails.Extensions.TryAdd("code", context.ProblemDetails.Status switch
            {
                StatusCodes.Status404NotFound => "not_found",
                StatusCodes.Status405MethodNotAllowed => "method_not_allowed",
                StatusCodes.Status415UnsupportedMediaType => "unsupported_media_type",
                { } status => $"http_{status}",
                null => "unknown",
            }));
        builder.Services.AddExceptionHandler<DomainExceptionHandler>();
        builder.AddSiloOpenApi();
        builder.Services.AddHealthChecks().AddCheck<PostgresHealthCheck>("postgres", tags: ["ready"]).AddCheck<SiloHealthCheck>("silo", tags: ["ready"]);
        configureServices?.Invoke(builder.Services);

        var app = builder.Build();

        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.MapOpenApi().AllowAnonymous();
        app.UseSwaggerUI(ui =>
        {
            ui.RoutePrefix = "docs";
            ui.SwaggerEndpoint("/openapi/v1.json", "CloudEdge API v1");
            ui.DocumentTitle = "CloudEdge API";
        });
        app.UseAuthentication();
        app.UseRateLimiter();
        app.UseAuthorization();

        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false }).AllowAnonymous();
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready") }).AllowAnonymous();

        var api = app.MapGroup("/api/v1")
            .RequireAuthorization()
            .RequireRateLimiting(RateLimitingSetup.ApiPolicy);
        api.MapGet("/ping", () => TypedResults.Ok(new PingResponse("ok")))
            .WithName("Ping")
            .WithTags("Diagnostics")
            .WithSummary("Answers without touching any grain: checks the token and the connection.");
        api.MapUserEndpoints();
        api.MapOrderEndpoints();
        api.MapDeviceEndpoints();
        api.MapGatewayEndpoints();
        api.MapModelEndpoints();
        api.MapLiveEndpoints();
        app.MapDashboard();
        // Orleans' own dashboard (grains, silos, calls): admins only, with the same bearer tokens as the API.
        app.MapOrleansDashboard(OrleansDashboardPath).RequireAuthorization(AuthorizationPolicies.Admin);
        return app;
    }
}
