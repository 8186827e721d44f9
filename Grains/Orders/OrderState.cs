namespace CloudEdge.Grains;

/// <summary>The persisted state of <see cref="OrderGrain"/>. Every property has a default, so older records still read.</summary>
public sealed class OrderState
{
    public bool Created { get; set; }

    public string UserId { get; set; } = string.Empty;

    public OrderStatus Status { get; set; } = OrderStatus.Created;

    public List<OrderLine> Lines { get; set; } = [];

    public decimal Total { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }

    public long Version { get; set; }

    public string? CancellationReason { get; set; }

    public List<OrderEvent> History { get; set; } = [];

    public CommandLog<OrderView> Commands { get; set; } = new();

    /// <summary>Order events stored with the change and not yet published (see <see cref="StreamOutbox{T}"/>).</summary>
    public List<PendingEvent<OrderChanged>> Outbox { get; set; } = [];
}
