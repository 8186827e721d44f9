namespace CloudEdge.Grains;

/// <summary>
/// An order, keyed by order id. Lifecycle: Created -> Paid -> Shipped -> Delivered; Cancelled from
/// Created or Paid. Every command carries a client request id: a retry returns the first result and
/// is applied once.
/// </summary>
[Alias("cloudedge.IOrderGrain")]
public interface IOrderGrain : IGrainWithStringKey
{
    /// <exception cref="RuleViolationException">The user does not exist.</exception>
    /// <exception cref="DomainConflictException">The order already exists (created by another request).</exception>
    Task<OrderView> Create(CreateOrder command);

    /// <exception cref="EntityNotFoundException">The order does not exist.</exception>
    [ReadOnly]
    Task<OrderView> Get();

    /// <exception cref="DomainConflictException">The transition is not allowed from the current status.</exception>
    Task<OrderView> Pay(OrderCommand command);

    Task<OrderView> Ship(OrderCommand command);

    Task<OrderView> Deliver(OrderCommand command);

    Task<OrderView> Cancel(CancelOrder command);
}

[GenerateSerializer]
[Alias("cloudedge.OrderStatus")]
public enum OrderStatus
{
    Created = 1,
    Paid = 2,
    Shipped = 3,
    Delivered = 4,
    Cancelled = 5,
}

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.OrderLine")]
public sealed record OrderLine(string Sku, int Quantity, decimal UnitPrice);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.CreateOrder")]
public sealed record CreateOrder(string RequestId, string UserId, IReadOnlyList<OrderLine> Lines);

/// <summary>A lifecycle command. With <see cref="ExpectedVersion"/>, a stale version is a conflict.</summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.OrderCommand")]
public sealed record OrderCommand(string RequestId, long? ExpectedVersion = null);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.CancelOrder")]
public sealed record CancelOrder(string RequestId, string? Reason, long? ExpectedVersion = null);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.OrderEvent")]
public sealed record OrderEvent(OrderStatus Status, DateTimeOffset At, string RequestId);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.OrderView")]
public sealed record OrderView(
    string OrderId,
    string UserId,
    OrderStatus Status,
    IReadOnlyList<OrderLine> Lines,
    decimal Total,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    long Version,
    string? CancellationReason,
    IReadOnlyList<OrderEvent> History);
