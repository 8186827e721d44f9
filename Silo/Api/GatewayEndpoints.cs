using System.Diagnostics;
using System.Globalization;
using CloudEdge.Grains;
using CloudEdge.Silo.Auth;
using CloudEdge.Silo.Edge;
using CloudEdge.Silo.Hosting;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace CloudEdge.Silo.Api;

/// <summary>The routes of edge gateways (docs/uplink.md): uplink, gateway health, desired and reported model.</summary>
internal static class GatewayEndpoints
{
    public static void MapGatewayEndpoints(this RouteGroupBuilder api)
    {
        var gateways = api.MapGroup("/gateways").WithTags("Gateways");

        gateways.MapGet("/", async (int? offset, int? limit, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            Caller.From(http.User).EnsureAdmin("list all gateways");
            var (o, l) = Paging.Read(offset, limit);
            var page = await grains.GetGrain<IDirectoryGrain>(IDirectoryGrain.Gateways).List(o, l);
            var views = await Task.WhenAll(page.Ids.Select(id => grains.GetGrain<IGatewayGrain>(id).Get()));
            return TypedResults.Ok(new Page<GatewayResponse>([.. views.Select(GatewayResponse.From)], page.Total, o, l));
        })
        .WithName("ListGateways")
        .WithSummary("Lists every known gateway with its devices, uplink health, desired and reported model (admin only).")
        .ProducesProblem(StatusCodes.Status403Forbidden);

        gateways.MapPost("/{gatewayId}/uplink", async (string gatewayId, HttpContext http, [FromServices] IGrainFactory grains,
            [FromServices] IOptions<EdgeOptions> options, [FromServices] IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json, [FromServices] TimeProvider time, [FromServices] SiloMetrics metrics, [FromServices] ILoggerFactory logs) =>
        {
            Authorized(gatewayId, http);
            var items = await UplinkReader.ReadAsync(http, options.Value, json.Value.SerializerOptions, http.RequestAborted);
            using var activity = SiloMetrics.ActivitySource.StartActivity("uplink");
            activity?.SetTag("cloudedge.gateway.id", gatewayId);
            activity?.SetTag("cloudedge.uplink.items", items.Count);
            if (Activity.Current is null && http.Request.Headers["traceparent"].ToString() is var header && TraceContext.IsValid(header))
            {
                // Nobody traces this request: still carry the gateway's context into the grain calls.
                RequestContext.Set(TraceContext.TraceParentKey, header);
            }

            var results = await UplinkBatch.ApplyAsync(gatewayId, items, grains, time, logs.CreateLogger(typeof(UplinkBatch)));
            metrics.RecordUplink(results);
            return TypedResults.Ok(new UplinkResponse(results));
        })
        .WithName("Uplink")
        .WithSummary("Applies a gateway's batch of summaries, alerts and drop reports exactly once (by per-device seq); one result per item.")
        .WithDescription("Gateway role with sub = gatewayId, or admin. Content-Encoding gzip or identity; at most 1,000 items and 4 MiB decompressed. The traceparent header is continued into the grain calls.")
        .Accepts<UplinkRequest>("application/json")
        .Produces<UplinkResponse>()
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status403Forbidden)
        .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
        .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
        .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        gateways.MapGet("/{gatewayId}", async (string gatewayId, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            Authorized(gatewayId, http);
            return TypedResults.Ok(GatewayResponse.From(await grains.GetGrain<IGatewayGrain>(gatewayId).Get()));
        })
        .WithName("GetGateway")
        .WithSummary("A gateway's devices, uplink health, desired and reported model (admin, or the gateway itself).")
        .ProducesProblem(StatusCodes.Status403Forbidden)
        .ProducesProblem(StatusCodes.Status404NotFound);

        gateways.MapPut("/{gatewayId}/desired", async (string gatewayId, SetDesiredRequest body, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            CommandHeaders.EnsureId(gatewayId, "gatewayId");
            Caller.From(http.User).EnsureAdmin("assign models to gateways");
            var expected = CommandHeaders.ExpectedVersion(http, body.ExpectedVersion);
            ModelRef? model = null;
            if (body.Model is { } selection)
            {
                CommandHeaders.EnsureId(selection.Name, "model.name");
                CommandHeaders.EnsureId(selection.Version, "model.version");
                try
                {
                    model = (await grains.GetGrain<IModelGrain>(ModelKey.Of(selection.Name!, selection.Version!)).Get()).Ref;
                }
                catch (EntityNotFoundException e)
                {
                    throw new RuleViolationException("model_not_found", e.Message + " Upload it with PUT /api/v1/models/{name}/{version} first.");
                }
            }

            var desired = await grains.GetGrain<IGatewayGrain>(gatewayId).SetDesired(new SetGatewayDesired(model, expected));
            CommandHeaders.SetETag(http, desired.Version);
            return TypedResults.Ok(DesiredResponse.From(desired));
        })
        .WithName("SetGatewayDesired")
        .WithSummary("Assigns a registered model version to a gateway (admin); { \"model\": null } clears it. If-Match guards the desired version.")
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status403Forbidden)
        .ProducesProblem(StatusCodes.Status409Conflict)
        .ProducesProblem(StatusCodes.Status422UnprocessableEntity);

        gateways.MapGet("/{gatewayId}/desired", async Task<IResult> (string gatewayId, int? waitSeconds, HttpContext http, [FromServices] IGrainFactory grains,
            [FromServices] DesiredChangeSignal signal, [FromServices] IOptions<EdgeOptions> options, [FromServices] IHostApplicationLifetime lifetime) =>
        {
            Authorized(gatewayId, http);
            var maxWait = Math.Max(0, options.Value.MaxWaitSeconds);
            if (waitSeconds is < 0 || waitSeconds > maxWait)
            {
                throw new InvalidInputException("invalid_wait", "waitSeconds", $"'waitSeconds' must be between 0 and {maxWait}.");
            }

            var gateway = grains.GetGrain<IGatewayGrain>(gatewayId);
            var known = IfNoneMatch(http);
            // Subscribe before reading, so that a change between the read and the wait is not missed.
            await using var watch = waitSeconds is > 0 && known.Count > 0 ? await signal.WatchAsync(gatewayId, http.RequestAborted) : null;
            var change = watch?.NextChange();
            var desired = await gateway.GetDesired();
            if (watch is not null && change is not null && known.Contains(desired.Version))
            {
                // Long-poll: answer at the first change, at the deadline, or when the client or the silo goes away.
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, lifetime.ApplicationStopping);
                stop.CancelAfter(TimeSpan.FromSeconds(waitSeconds ?? 0));
                try
                {
                    while (known.Contains(desired.Version))
                    {
                        await change.WaitAsync(stop.Token);
                        // A PUT that set what was already desired signals too: wait on unless the version moved.
                        change = watch.NextChange();
                        desired = await gateway.GetDesired();
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                }
            }

            CommandHeaders.SetETag(http, desired.Version);
            return known.Contains(desired.Version)
                ? TypedResults.StatusCode(StatusCodes.Status304NotModified)
                : TypedResults.Ok(DesiredResponse.From(desired));
        })
        .WithName("GetGatewayDesired")
        .WithSummary("The gateway's desired model with ETag \"<version>\". If-None-Match with the current ETag: 304; with ?waitSeconds= (0-60) the answer waits for a change.")
        .Produces<DesiredResponse>()
        .Produces(StatusCodes.Status304NotModified)
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status403Forbidden);

        gateways.MapPut("/{gatewayId}/reported", async (string gatewayId, SetReportedRequest body, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            Authorized(gatewayId, http);
            if (body.Model is not { } model)
            {
                throw new InvalidInputException("missing_model", "model", "Give 'model': { name, version, status, error? }.");
            }

            CommandHeaders.EnsureId(model.Name, "model.name");
            CommandHeaders.EnsureId(model.Version, "model.version");
            var status = EdgeText.ParseModelStatus(model.Status)
                ?? throw new InvalidInputException("invalid_status", "model.status", "'status' is one of downloading, loading, running, failed.");
            var reported = await grains.GetGrain<IGatewayGrain>(gatewayId).SetReported(new ReportGatewayModel(model.Name!, model.Version!, status, model.Error));
            CommandHeaders.SetETag(http, reported.Version);
            return TypedResults.Ok(ReportedResponse.From(reported));
        })
        .WithName("SetGatewayReported")
        .WithSummary("The gateway reports the model it runs (or failed to load, with an error); the gateway itself or admin.")
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status403Forbidden);
    }

    private static void Authorized(string gatewayId, HttpContext http)
    {
        CommandHeaders.EnsureId(gatewayId, "gatewayId");
        Caller.From(http.User).EnsureGatewayOrAdmin(gatewayId);
    }

    /// <summary>The versions named by If-None-Match (<c>"3"</c>, <c>W/"3"</c>, lists); unparseable tags never match.</summary>
    private static HashSet<long> IfNoneMatch(HttpContext http)
    {
        var versions = new HashSet<long>();
        foreach (var value in http.Request.Headers.IfNoneMatch)
        {
            foreach (var part in (value ?? string.Empty).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var tag = part.StartsWith("W/", StringComparison.Ordinal) ? part[2..] : part;
                if (long.TryParse(tag.Trim('"'), NumberStyles.None, CultureInfo.InvariantCulture, out var version))
                {
                    versions.Add(version);
                }
            }
        }

        return versions;
    }
}
