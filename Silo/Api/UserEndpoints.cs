using Microsoft.AspNetCore.Mvc;
using CloudEdge.Grains;
using CloudEdge.Silo.Auth;

namespace CloudEdge.Silo.Api;

internal static class UserEndpoints
{
    public static void MapUserEndpoints(this RouteGroupBuilder api)
    {
        var users = api.MapGroup("/users").WithTags("Users");

        users.MapPost("/", async (RegisterUserRequest body, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            var caller = Caller.From(http.User);
            var userId = body.UserId ?? caller.Subject;
            CommandHeaders.EnsureId(userId, "userId");
            caller.EnsureCanAccessUser(userId);
            var requestId = CommandHeaders.RequestId(http, body.RequestId);
            var view = await grains.GetGrain<IUserGrain>(userId).Register(new RegisterUser(requestId, body.Email ?? string.Empty, body.DisplayName ?? string.Empty));
            CommandHeaders.SetETag(http, view.Version);
            return TypedResults.Created($"/api/v1/users/{Uri.EscapeDataString(userId)}", view);
        })
        .WithName("RegisterUser")
        .WithSummary("Registers a user (the caller by default; admins may register anyone).")
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status409Conflict);

        users.MapGet("/", async (int? offset, int? limit, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            Caller.From(http.User).EnsureAdmin("list all users");
            var (o, l) = Paging.Read(offset, limit);
            var page = await grains.GetGrain<IUserDirectoryGrain>(IUserDirectoryGrain.Key).List(o, l);
            var views = await Task.WhenAll(page.UserIds.Select(id => grains.GetGrain<IUserGrain>(id).Get()));
            return TypedResults.Ok(new Page<UserView>(views, page.Total, o, l));
        })
        .WithName("ListUsers")
        .WithSummary("Lists every registered user, in registration order (admin only).")
        .ProducesProblem(StatusCodes.Status403Forbidden);

        users.MapGet("/{userId}", async (string userId, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            var user = Authorized(userId, http, grains);
            var view = await user.Get();
            CommandHeaders.SetETag(http, view.Version);
            return TypedResults.Ok(view);
        })
        .WithName("GetUser")
        .ProducesProblem(StatusCodes.Status404NotFound);

        users.MapPatch("/{userId}", async (string userId, UpdateUserRequest body, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            var user = Authorized(userId, http, grains);
            var requestId = CommandHeaders.RequestId(http, body.RequestId);
            var expected = CommandHeaders.ExpectedVersion(http, body.ExpectedVersion);
            var view = await user.UpdateProfile(new UpdateUserProfile(requestId, body.Email, body.DisplayName, expected));
            CommandHeaders.SetETag(http, view.Version);
            return TypedResults.Ok(view);
        })
        .WithName("UpdateUser")
        .WithSummary("Changes the email and/or display name; If-Match (the ETag from GET) guards against lost updates.")
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status404NotFound)
        .ProducesProblem(StatusCodes.Status409Conflict);

        users.MapGet("/{userId}/orders", async (string userId, int? offset, int? limit, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            var user = Authorized(userId, http, grains);
            return TypedResults.Ok(await OrderEndpoints.ListOrders(user, grains, offset, limit));
        })
        .WithName("ListUserOrders")
        .ProducesProblem(StatusCodes.Status404NotFound);

        users.MapGet("/{userId}/devices", async (string userId, int? offset, int? limit, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            var user = Authorized(userId, http, grains);
            return TypedResults.Ok(await DeviceEndpoints.ListDevices(user, grains, offset, limit));
        })
        .WithName("ListUserDevices")
        .ProducesProblem(StatusCodes.Status404NotFound);
    }

    private static IUserGrain Authorized(string userId, HttpContext http, [FromServices] IGrainFactory grains)
    {
        CommandHeaders.EnsureId(userId, "userId");
        Caller.From(http.User).EnsureCanAccessUser(userId);
        return grains.GetGrain<IUserGrain>(userId);
    }
}
