using System.Globalization;
using System.Security.Claims;
using CloudEdge.Grains;
using CloudEdge.Silo.Api;
using CloudEdge.Silo.Auth;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace CloudEdge.Silo.Live;

/// <summary>
/// GET /api/v1/live/...: the platform's streams as Server-Sent Events (docs/live.md). Everything that
/// can be refused (token, access, unknown entity, bad resume point, too many connections) is answered
/// with a problem before the stream starts.
/// </summary>
internal static class LiveEndpoints
{
    /// <summary>The only paths where a token may come as <c>?access_token=</c> (EventSource cannot send headers).</summary>
    public const string PathPrefix = "/api/v1/live";

    public static void AddSiloLive(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<LiveOptions>().Bind(builder.Configuration.GetSection(LiveOptions.Section)).Validate(o =>
        {
            o.Validate();
            return true;
        });
        builder.Services.AddSingleton<LiveMetrics>();
        builder.Services.AddSingleton<LiveConnections>();
        builder.Services.AddSingleton<SseWriter>();
        builder.Services.AddSingleton<LiveFeeds>();
        builder.Services.AddSingleton<LiveLog>();
    }

    public static void MapLiveEndpoints(this RouteGroupBuilder api)
    {
        var live = api.MapGroup("/live").WithTags("Live");

        live.MapGet("/devices/{deviceId}", async (string deviceId, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            CommandHeaders.EnsureId(deviceId, "deviceId");
            var device = await grains.GetGrain<IDeviceGrain>(deviceId).Get();
            DeviceEndpoints.EnsureVisible(Caller.From(http.User), device);
            await Stream<DeviceEvent>(http, PlatformStreams.DeviceStream(deviceId), e => e.Type);
        })
        .WithName("LiveDevice")
        .WithSummary("A device's summaries, alerts and status changes as Server-Sent Events (its owner, admin).")
        .WithLiveAnswers();

        live.MapGet("/gateways/{gatewayId}", async (string gatewayId, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            CommandHeaders.EnsureId(gatewayId, "gatewayId");
            Caller.From(http.User).EnsureGatewayOrAdmin(gatewayId);
            await grains.GetGrain<IGatewayGrain>(gatewayId).Get();
            await Stream<DeviceEvent>(http, PlatformStreams.GatewayStream(gatewayId), e => e.Type);
        })
        .WithName("LiveGateway")
        .WithSummary("Every event of a gateway's devices, and the gateway's model changes, as Server-Sent Events (that gateway, admin).")
        .WithLiveAnswers();

        // The fleet streams: one key each, for admins.
        foreach (var (path, streamId, what, name) in new[]
        {
            ("/alerts", PlatformStreams.AlertsStream, "every alert of the fleet", "LiveAlerts"),
            ("/status", PlatformStreams.StatusStream, "every device online/offline and model version change, and gateway model changes", "LiveStatus"),
        })
        {
            // The principal parameter makes this a route handler (with OpenAPI metadata), not a plain request delegate.
            live.MapGet(path, async (HttpContext http, ClaimsPrincipal user) =>
            {
                Caller.From(user).EnsureAdmin($"follow {what}");
                await Stream<DeviceEvent>(http, streamId, e => e.Type);
            })
            .WithName(name)
            .WithSummary($"{char.ToUpperInvariant(what[0])}{what[1..]}, as Server-Sent Events (admin).")
            .WithLiveAnswers();
        }

        live.MapGet("/users/{userId}/orders", async (string userId, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            CommandHeaders.EnsureId(userId, "userId");
            Caller.From(http.User).EnsureCanAccessUser(userId);
            if (!await grains.GetGrain<IUserGrain>(userId).Exists())
            {
                throw new EntityNotFoundException("user_not_found", $"User '{userId}' is not registered.");
            }

            await Stream<OrderChanged>(http, PlatformStreams.OrdersStream(userId), _ => "order");
        })
        .WithName("LiveOrders")
        .WithSummary("The changes of a user's orders as Server-Sent Events (that user, admin).")
        .WithLiveAnswers();
    }

    private static RouteHandlerBuilder WithLiveAnswers(this RouteHandlerBuilder route) => route
        .WithDescription("text/event-stream: `id: <seq>`, `event: <type>`, `data: <one-line JSON>`. Resume with Last-Event-ID (or ?lastEventId=); ?replay=N (0-1000) starts N events back. A token may come as ?access_token= on these routes only.")
        .Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status403Forbidden)
        .ProducesProblem(StatusCodes.Status404NotFound)
        .ProducesProblem(StatusCodes.Status429TooManyRequests);

    private static async Task Stream<T>(HttpContext http, StreamId streamId, Func<T, string> eventName)
    {
        var services = http.RequestServices;
        var history = services.GetRequiredService<LiveLog>().HistoryOf<T>(streamId);
        var after = await StartAsync(http, history);
        var settings = services.GetRequiredService<IOptions<LiveOptions>>().Value;
        var caller = Caller.From(http.User).Subject;
        using var lease = services.GetRequiredService<LiveConnections>().TryOpen(caller, settings.MaxConnectionsPerCaller)
            ?? throw new RequestRejectedException(StatusCodes.Status429TooManyRequests, "too_many_streams",
                $"'{caller}' already holds {settings.MaxConnectionsPerCaller} live connections; close one first.");
        await services.GetRequiredService<SseWriter>().RunAsync(http, streamId, after, history.Read, eventName);
    }

    /// <summary>
    /// The sequence the client has seen: the Last-Event-ID it names (header, or ?lastEventId= for a first
    /// EventSource connection), else ?replay=N events back from the stream's end, else null (from now).
    /// </summary>
    private static async Task<long?> StartAsync<T>(HttpContext http, LiveLog.History<T> history)
    {
        var lastEventId = http.Request.Headers["Last-Event-ID"].ToString();
        if (lastEventId.Length == 0)
        {
            lastEventId = http.Request.Query["lastEventId"].ToString();
        }

        if (lastEventId.Length > 0)
        {
            if (!long.TryParse(lastEventId, NumberStyles.None, CultureInfo.InvariantCulture, out var last) || last == long.MaxValue)
            {
                throw new InvalidInputException("invalid_last_event_id", "lastEventId", "Last-Event-ID must be the sequence number (id) of the last event received.");
            }

            // An id beyond the stream's end comes from another life of the database: continue from the end.
            return Math.Min(last, await history.LastSequenceAsync(http.RequestAborted));
        }

        var replayText = http.Request.Query["replay"].ToString();
        if (replayText.Length == 0)
        {
            return null;
        }

        if (!int.TryParse(replayText, NumberStyles.None, CultureInfo.InvariantCulture, out var replay) || replay > LiveOptions.MaxReplay)
        {
            throw new InvalidInputException("invalid_replay", "replay", $"'replay' must be between 0 and {LiveOptions.MaxReplay}.");
        }

        if (replay == 0)
        {
            return null;
        }

        return Math.Max(0, await history.LastSequenceAsync(http.RequestAborted) - replay);
    }
}
