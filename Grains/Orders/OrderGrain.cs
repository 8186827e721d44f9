namespace CloudEdge.Grains;

internal sealed class OrderGrain : Grain, IOrderGrain
{
    private readonly IPersistentState<OrderState> state;
    private readonly TimeProvider time;
    private readonly StreamOutbox<OrderChanged> outbox;

    public OrderGrain([PersistentState("order", PlatformStorage.Name)] IPersistentState<OrderState> state, TimeProvider time)
    {
        this.state = state;
        this.time = time;
        outbox = new StreamOutbox<OrderChanged>(this, () => state.State.Outbox, state.WriteOrReloadAsync);
    }

    // Events the last activation stored but did not publish (it stopped or failed first).
    public override Task OnActivateAsync(CancellationToken cancellationToken) => outbox.ActivateAsync(cancellationToken);

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => outbox.DeactivateAsync(cancellationToken);

    private string OrderId => this.GetPrimaryKeyString();

    private OrderState S => state.State;

    public async Task<OrderView> Create(CreateOrder command)
    {
        ArgumentNullException.ThrowIfNull(command);
        Identifiers.EnsureRequestId(command.RequestId);
        Identifiers.EnsureId(command.UserId, "userId");
        var (lines, total) = OrderRules.NormalizeLines(command.Lines);
        var fingerprint = OrderRules.Fingerprint(command.UserId, lines);
        var user = GrainFactory.GetGrain<IUserGrain>(command.UserId);
        if (S.Commands.TryGetResult(command.RequestId, fingerprint, out var earlier) && earlier is not null)
        {
            // The first attempt may have stored the order and failed before the user recorded it.
            await user.AttachOrder(OrderId);
            return earlier;
        }

        if (S.Created)
        {
            throw new DomainConflictException("order_exists", $"Order '{OrderId}' already exists.");
        }

        if (!await user.Exists())
        {
            throw new RuleViolationException("user_not_found", $"Order '{OrderId}' cannot be created: user '{command.UserId}' does not exist.");
        }

        var now = time.GetUtcNow();
        S.Created = true;
        S.UserId = command.UserId;
        S.Status = OrderStatus.Created;
        S.Lines = lines;
        S.Total = total;
        S.CreatedAt = now;
        S.UpdatedAt = now;
        S.Version = 1;
        S.History = [new OrderEvent(OrderStatus.Created, now, command.RequestId)];
        var view = View();
        S.Commands.Record(command.RequestId, fingerprint, view);
        AddEvent(OrderStatus.Created, view);
        await outbox.SaveAsync();
        await user.AttachOrder(OrderId);
        return view;
    }

    public Task<OrderView> Get() => Task.FromResult(View(EnsureCreated()));

    public Task<OrderView> Pay(OrderCommand command) => Transition(command?.RequestId, command?.ExpectedVersion, OrderStatus.Paid, null);

    public Task<OrderView> Ship(OrderCommand command) => Transition(command?.RequestId, command?.ExpectedVersion, OrderStatus.Shipped, null);

    public Task<OrderView> Deliver(OrderCommand command) => Transition(command?.RequestId, command?.ExpectedVersion, OrderStatus.Delivered, null);

    public Task<OrderView> Cancel(CancelOrder command)
    {
        var reason = command?.Reason?.Trim();
        if (reason is { Length: > OrderRules.MaxReasonLength })
        {
            throw new InvalidInputException("invalid_reason", "reason", $"'reason' has at most {OrderRules.MaxReasonLength} characters.");
        }

        return Transition(command?.RequestId, command?.ExpectedVersion, OrderStatus.Cancelled, string.IsNullOrEmpty(reason) ? null : reason);
    }

    private async Task<OrderView> Transition(string? requestId, long? expectedVersion, OrderStatus to, string? reason)
    {
        Identifiers.EnsureRequestId(requestId);
        var fingerprint = $"{to}\n{expectedVersion}\n{reason}";
        if (S.Commands.TryGetResult(requestId!, fingerprint, out var earlier) && earlier is not null)
        {
            return earlier;
        }

        EnsureCreated();
        if (expectedVersion is { } expected && expected != S.Version)
        {
            throw new DomainConflictException("version_mismatch", $"Order '{OrderId}' is at version {S.Version}, not {expected}.");
        }

        if (!OrderRules.CanTransition(S.Status, to))
        {
            throw new DomainConflictException("illegal_transition", $"Order '{OrderId}' cannot go from {S.Status} to {to}.");
        }

        var now = time.GetUtcNow();
        S.Status = to;
        S.UpdatedAt = now;
        S.Version++;
        if (to == OrderStatus.Cancelled)
        {
            S.CancellationReason = reason;
        }

        S.History.Add(new OrderEvent(to, now, requestId!));
        var view = View();
        S.Commands.Record(requestId!, fingerprint, view);
        AddEvent(to, view);
        await outbox.SaveAsync();
        return view;
    }

    private void AddEvent(OrderStatus change, OrderView view) =>
        outbox.Add(new OrderChanged(change.ToString().ToLowerInvariant(), view), [PlatformStreams.Format(PlatformStreams.OrdersStream(view.UserId))], TraceContext.CurrentCall());

    private OrderState EnsureCreated() =>
        S.Created ? S : throw new EntityNotFoundException("order_not_found", $"Order '{OrderId}' does not exist.");

    private OrderView View() => View(S);

    private OrderView View(OrderState s) =>
        new(OrderId, s.UserId, s.Status, s.Lines.ToArray(), s.Total, s.CreatedAt, s.UpdatedAt, s.Version, s.CancellationReason, s.History.ToArray());
}
