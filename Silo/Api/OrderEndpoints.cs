using Microsoft.AspNetCore.Mvc;
using CloudEdge.Grains;
using CloudEdge.Silo.Auth;

namespace CloudEdge.Silo.Api;

internal static class OrderEndpoints
{
    public static void MapOrderEndpoints(this RouteGroupBuilder api)
    {
        var orders = api.MapGroup("/orders").WithTags("Orders");

        orders.MapPost("/", async (CreateOrderRequest body, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            var caller = Caller.From(http.User);
            var userId = body.UserId ?? caller.Subject;
            CommandHeaders.EnsureId(userId, "userId");
            caller.EnsureCanAccessUser(userId);
            var requestId = CommandHeaders.RequestId(http, body.RequestId);
            var orderId = body.OrderId ?? CommandHeaders.DeriveOrderId(userId, requestId);
            CommandHeaders.EnsureId(orderId, "orderId");
            if (body.Lines is null)
            {
                throw new InvalidInputException("no_lines", "lines", "An order needs at least one line.");
            }

            var lines = body.Lines.Select((line, i) => line is null
                ? throw new InvalidInputException("invalid_line", $"lines[{i}]", $"Line {i} is missing.")
                : new OrderLine(line.Sku ?? string.Empty, line.Quantity, line.UnitPrice)).ToList();
            var view = await grains.GetGrain<IOrderGrain>(orderId).Create(new CreateOrder(requestId, userId, lines));
            CommandHeaders.SetETag(http, view.Version);
            return TypedResults.Created($"/api/v1/orders/{Uri.EscapeDataString(orderId)}", view);
        })
        .WithName("CreateOrder")
        .WithSummary("Creates an order for the caller (admins: for any user). Without orderId, the id is derived from the Idempotency-Key.")
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status409Conflict)
        .ProducesProblem(StatusCodes.Status422UnprocessableEntity);

        orders.MapGet("/", async (string? userId, int? offset, int? limit, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            var caller = Caller.From(http.User);
            var owner = userId ?? caller.Subject;
            CommandHeaders.EnsureId(owner, "userId");
            caller.EnsureCanAccessUser(owner);
            return TypedResults.Ok(await ListOrders(grains.GetGrain<IUserGrain>(owner), grains, offset, limit));
        })
        .WithName("ListOrders")
        .WithSummary("Lists the caller's orders; admins pass ?userId= for another user's.")
        .ProducesProblem(StatusCodes.Status404NotFound);

        orders.MapGet("/{orderId}", async (string orderId, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            var (_, view) = await Authorized(orderId, http, grains);
            CommandHeaders.SetETag(http, view.Version);
            return TypedResults.Ok(view);
        })
        .WithName("GetOrder")
        .ProducesProblem(StatusCodes.Status404NotFound);

        MapTransition(orders, "pay", adminOnly: false, (order, requestId, expected, _) => order.Pay(new OrderCommand(requestId, expected)));
        MapTransition(orders, "ship", adminOnly: true, (order, requestId, expected, _) => order.Ship(new OrderCommand(requestId, expected)));
        MapTransition(orders, "deliver", adminOnly: true, (order, requestId, expected, _) => order.Deliver(new OrderCommand(requestId, expected)));
        MapTransition(orders, "cancel", adminOnly: false, (order, requestId, expected, reason) => order.Cancel(new CancelOrder(requestId, reason, expected)));
    }

    private static void MapTransition(RouteGroupBuilder orders, string action, bool adminOnly, Func<IOrderGrain, string, long?, string?, Task<OrderView>> apply)
    {
        orders.MapPost($"/{{orderId}}/{action}", async (string orderId, OrderCommandRequest? body, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            if (adminOnly)
            {
                Caller.From(http.User).EnsureAdmin($"{action} orders");
            }

            var requestId = CommandHeaders.RequestId(http, body?.RequestId);
            var expected = CommandHeaders.ExpectedVersion(http, body?.ExpectedVersion);
            var (order, _) = await Authorized(orderId, http, grains);
            var view = await apply(order, requestId, expected, body?.Reason);
            CommandHeaders.SetETag(http, view.Version);
            return TypedResults.Ok(view);
        })
        .WithName(char.ToUpperInvariant(action[0]) + action[1..] + "Order")
        .WithSummary(adminOnly ? $"Marks the order {action} (admin only)." : $"Moves the order to {action} (owner or admin).")
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status404NotFound)
        .ProducesProblem(StatusCodes.Status409Conflict);
    }

    private static async Task<(IOrderGrain Order, OrderView View)> Authorized(string orderId, HttpContext http, [FromServices] IGrainFactory grains)
    {
        CommandHeaders.EnsureId(orderId, "orderId");
        var order = grains.GetGrain<IOrderGrain>(orderId);
        var view = await order.Get();
        Caller.From(http.User).EnsureCanAccessUser(view.UserId);
        return (order, view);
    }

    internal static async Task<Page<OrderView>> ListOrders(IUserGrain user, IGrainFactory grains, int? offset, int? limit)
    {
        var (o, l) = Paging.Read(offset, limit);
        var ids = await user.GetOrderIds();
        var views = await Task.WhenAll(ids.Skip(o).Take(l).Select(id => grains.GetGrain<IOrderGrain>(id).Get()));
        return new Page<OrderView>(views, ids.Count, o, l);
    }
}
