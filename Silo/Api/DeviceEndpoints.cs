using Microsoft.AspNetCore.Mvc;
using System.Text.Json;
using CloudEdge.Grains;
using CloudEdge.Silo.Auth;

namespace CloudEdge.Silo.Api;

internal static class DeviceEndpoints
{
    public static void MapDeviceEndpoints(this RouteGroupBuilder api)
    {
        var devices = api.MapGroup("/devices").WithTags("Devices");

        devices.MapPost("/", async (RegisterDeviceRequest body, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            var caller = Caller.From(http.User);
            CommandHeaders.EnsureId(body.DeviceId, "deviceId");
            var ownerId = body.OwnerId ?? caller.Subject;
            CommandHeaders.EnsureId(ownerId, "ownerId");
            caller.EnsureCanAccessUser(ownerId);
            var requestId = CommandHeaders.RequestId(http, body.RequestId);
            var view = await grains.GetGrain<IDeviceGrain>(body.DeviceId!).Register(
                new RegisterDevice(requestId, ownerId, body.GatewayId ?? string.Empty, body.Kind ?? string.Empty, body.Model ?? string.Empty));
            return TypedResults.Created($"/api/v1/devices/{Uri.EscapeDataString(body.DeviceId!)}", DeviceResponse.From(view));
        })
        .WithName("RegisterDevice")
        .WithSummary("Registers a device twin for the caller (admins: for any owner).")
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status409Conflict)
        .ProducesProblem(StatusCodes.Status422UnprocessableEntity);

        devices.MapGet("/", async (string? ownerId, int? offset, int? limit, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            var caller = Caller.From(http.User);
            if (ownerId is null && caller.IsAdmin)
            {
                return TypedResults.Ok(await ListAllDevices(grains, offset, limit));
            }

            var owner = ownerId ?? caller.Subject;
            CommandHeaders.EnsureId(owner, "ownerId");
            caller.EnsureCanAccessUser(owner);
            return TypedResults.Ok(await ListDevices(grains.GetGrain<IUserGrain>(owner), grains, offset, limit));
        })
        .WithName("ListDevices")
        .WithSummary("Lists the caller's devices; admins get every device (the fleet), or pass ?ownerId= for one user's.")
        .ProducesProblem(StatusCodes.Status404NotFound);

        devices.MapGet("/{deviceId}", async (string deviceId, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            var (_, view) = await Authorized(deviceId, http, grains);
            return TypedResults.Ok(DeviceResponse.From(view));
        })
        .WithName("GetDevice")
        .ProducesProblem(StatusCodes.Status404NotFound);

        devices.MapPatch("/{deviceId}/desired", async (string deviceId, UpdatePropertiesRequest body, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            var (device, _) = await Authorized(deviceId, http, grains);
            var view = await device.UpdateDesired(Command(body, http));
            return TypedResults.Ok(DeviceResponse.From(view));
        })
        .WithName("UpdateDesiredProperties")
        .WithSummary("Merges desired properties (owner or admin); null removes one. If-Match guards the desired version.")
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status404NotFound)
        .ProducesProblem(StatusCodes.Status409Conflict);

        devices.MapPatch("/{deviceId}/reported", async (string deviceId, UpdatePropertiesRequest body, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            EnsureGatewayOrAdmin(http, "report device properties");
            var (device, current) = await Authorized(deviceId, http, grains, ownerCheck: false);
            EnsureDeviceOfGateway(http, current);
            var view = await device.UpdateReported(Command(body, http));
            return TypedResults.Ok(DeviceResponse.From(view));
        })
        .WithName("UpdateReportedProperties")
        .WithSummary("Merges reported properties (gateway or admin role); marks the device online.")
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status404NotFound)
        .ProducesProblem(StatusCodes.Status409Conflict);

        devices.MapPost("/{deviceId}/connection", async (string deviceId, SetConnectionRequest body, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            EnsureGatewayOrAdmin(http, "set a device's connection status");
            if (body.Online is not { } online)
            {
                throw new InvalidInputException("missing_online", "online", "'online' (true or false) is required.");
            }

            var (device, current) = await Authorized(deviceId, http, grains, ownerCheck: false);
            EnsureDeviceOfGateway(http, current);
            var view = await device.SetConnection(new SetDeviceConnection(CommandHeaders.RequestId(http, body.RequestId), online, body.At));
            return TypedResults.Ok(DeviceResponse.From(view));
        })
        .WithName("SetDeviceConnection")
        .WithSummary("Records the device going online or offline (gateway or admin role).")
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status404NotFound);
    }

    private static UpdateDeviceProperties Command(UpdatePropertiesRequest body, HttpContext http)
    {
        var requestId = CommandHeaders.RequestId(http, body.RequestId);
        var expected = CommandHeaders.ExpectedVersion(http, body.ExpectedVersion);
        var properties = (body.Properties ?? []).ToDictionary(
            p => p.Key,
            p => p.Value.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined ? null : p.Value.GetRawText(),
            StringComparer.Ordinal);
        return new UpdateDeviceProperties(requestId, properties, expected);
    }

    private static void EnsureGatewayOrAdmin(HttpContext http, string action)
    {
        var caller = Caller.From(http.User);
        if (!caller.IsAdmin && !caller.IsGateway)
        {
            throw new AccessDeniedException($"Only the '{Roles.Gateway}' or '{Roles.Admin}' role may {action}.");
        }
    }

    /// <summary>A gateway speaks only for the devices registered behind it (its token's subject is its gateway id).</summary>
    private static void EnsureDeviceOfGateway(HttpContext http, DeviceView device)
    {
        var caller = Caller.From(http.User);
        if (!caller.IsAdmin && !string.Equals(caller.Subject, device.GatewayId, StringComparison.Ordinal))
        {
            throw new AccessDeniedException($"Gateway '{caller.Subject}' may not report for device '{device.DeviceId}' of gateway '{device.GatewayId}'.");
        }
    }

    private static async Task<(IDeviceGrain Device, DeviceView View)> Authorized(string deviceId, HttpContext http, IGrainFactory grains, bool ownerCheck = true)
    {
        CommandHeaders.EnsureId(deviceId, "deviceId");
        var device = grains.GetGrain<IDeviceGrain>(deviceId);
        var view = await device.Get();
        if (ownerCheck)
        {
            EnsureVisible(Caller.From(http.User), view);
        }

        return (device, view);
    }

    /// <summary>
    /// A device the caller may not see answers exactly like one that does not exist (404 device_not_found), so
    /// device ids cannot be probed.
    /// </summary>
    internal static void EnsureVisible(Caller caller, DeviceView view)
    {
        if (!caller.CanAccessUser(view.OwnerId))
        {
            throw new EntityNotFoundException("device_not_found", $"Device '{view.DeviceId}' is not registered.");
        }
    }

    internal static async Task<Page<DeviceResponse>> ListDevices(IUserGrain user, IGrainFactory grains, int? offset, int? limit)
    {
        var (o, l) = Paging.Read(offset, limit);
        var ids = await user.GetDeviceIds();
        return await DevicePage(grains, [.. ids.Skip(o).Take(l)], ids.Count, o, l);
    }

    /// <summary>Every registered device, in registration order, with its connection and latest summary.</summary>
    private static async Task<Page<DeviceResponse>> ListAllDevices(IGrainFactory grains, int? offset, int? limit)
    {
        var (o, l) = Paging.Read(offset, limit);
        var page = await grains.GetGrain<IDirectoryGrain>(IDirectoryGrain.Devices).List(o, l);
        return await DevicePage(grains, page.Ids, page.Total, o, l);
    }

    private static async Task<Page<DeviceResponse>> DevicePage(IGrainFactory grains, IReadOnlyList<string> ids, int total, int offset, int limit)
    {
        var views = await Task.WhenAll(ids.Select(id => grains.GetGrain<IDeviceGrain>(id).Get()));
        return new Page<DeviceResponse>([.. views.Select(DeviceResponse.From)], total, offset, limit);
    }
}
