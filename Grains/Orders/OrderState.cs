namespace CloudEdge.Grains;

/// <summary>The persisted state of <see cref="OrderGrain"/>. Every property has a default, so older records still read.</summary>
[GenerateSerializer]
[Alias("cloudedge.OrderState")]
public sealed class OrderState
{
    [Id(0)]
    public bool Created { get; set; }

    [Id(1)]
    public string UserId { get; set; } = string.Empty;

    [Id(2)]
    public OrderStatus Status { get; set; } = OrderStatus.Created;

    [Id(3)]
    public List<OrderLine> Lines { get; set; } = [];

    [Id(4)]
    public decimal Total { get; set; }

    [Id(5)]
    public DateTimeOffset CreatedAt { get; set; }

    [Id(6)]
    public DateTimeOffset UpdatedAt { get; set; }

    [Id(7)]
    public long Version { get; set; }

    [Id(8)]
    public string? CancellationReason { get; set; }

    [Id(9)]
    public List<OrderEvent> History { get; set; } = [];

    [Id(10)]
    public CommandLog<OrderView> Commands { get; set; } = new();

    /// <summary>Order events stored with the change and not yet published (see <see cref="StreamOutbox{T}"/>).</summary>
    [Id(11)]
    public List<PendingEvent<OrderChanged>> Outbox { get; set; } = [];
}
