using CloudEdge.Grains;

namespace CloudEdge.Silo.Tests;

/// <summary>The grains through the real runtime and SQLite storage, called with IGrainFactory.</summary>
public sealed class GrainTests(SiloFixture fixture) : IClassFixture<SiloFixture>
{
    private readonly TestSilo silo = fixture.Silo;

    private async Task<string> RegisteredUser()
    {
        var userId = Ids.New("user");
        await silo.Grains.GetGrain<IUserGrain>(userId).Register(new RegisterUser(Guid.NewGuid().ToString(), $"{userId}@example.com", "Test User"));
        return userId;
    }

    private static CreateOrder NewOrder(string userId) =>
        new(Guid.NewGuid().ToString(), userId, [new OrderLine("sku-1", 2, 10.25m), new OrderLine("sku-2", 3, 0.10m)]);

    [Fact]
    public async Task Order_goes_through_its_lifecycle_with_a_decimal_total()
    {
        var userId = await RegisteredUser();
        var order = silo.Grains.GetGrain<IOrderGrain>(Ids.New("ord"));

        var created = await order.Create(NewOrder(userId));
        Assert.Equal(OrderStatus.Created, created.Status);
        Assert.Equal(20.80m, created.Total);
        Assert.Equal(1, created.Version);

        Assert.Equal(OrderStatus.Paid, (await order.Pay(new OrderCommand("pay-1"))).Status);
        Assert.Equal(OrderStatus.Shipped, (await order.Ship(new OrderCommand("ship-1"))).Status);
        var delivered = await order.Deliver(new OrderCommand("deliver-1"));
        Assert.Equal(OrderStatus.Delivered, delivered.Status);
        Assert.Equal(4, delivered.Version);
        Assert.Equal([OrderStatus.Created, OrderStatus.Paid, OrderStatus.Shipped, OrderStatus.Delivered], delivered.History.Select(e => e.Status));
    }

    [Fact]
    public async Task Illegal_transitions_are_rejected_with_a_reason_and_change_nothing()
    {
        var userId = await RegisteredUser();
        var order = silo.Grains.GetGrain<IOrderGrain>(Ids.New("ord"));
        await order.Create(NewOrder(userId));

        var ship = await Assert.ThrowsAsync<DomainConflictException>(() => order.Ship(new OrderCommand("ship-early")));
        Assert.Equal("illegal_transition", ship.Code);
        Assert.Contains("Created", ship.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<DomainConflictException>(() => order.Deliver(new OrderCommand("deliver-early")));

        await order.Pay(new OrderCommand("pay"));
        await order.Ship(new OrderCommand("ship"));
        var cancel = await Assert.ThrowsAsync<DomainConflictException>(() => order.Cancel(new CancelOrder("cancel-late", "too late")));
        Assert.Equal("illegal_transition", cancel.Code);

        var view = await order.Get();
        Assert.Equal(OrderStatus.Shipped, view.Status);
        Assert.Equal(3, view.Version);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cancel_is_allowed_from_created_and_paid_and_final(bool payFirst)
    {
        var userId = await RegisteredUser();
        var order = silo.Grains.GetGrain<IOrderGrain>(Ids.New("ord"));
        await order.Create(NewOrder(userId));
        if (payFirst)
        {
            await order.Pay(new OrderCommand("pay"));
        }

        var cancelled = await order.Cancel(new CancelOrder("cancel", "changed my mind"));
        Assert.Equal(OrderStatus.Cancelled, cancelled.Status);
        Assert.Equal("changed my mind", cancelled.CancellationReason);
        await Assert.ThrowsAsync<DomainConflictException>(() => order.Pay(new OrderCommand("pay-after-cancel")));
    }

    [Fact]
    public async Task A_retried_command_returns_the_same_result_and_is_applied_once()
    {
        var userId = await RegisteredUser();
        var orderId = Ids.New("ord");
        var order = silo.Grains.GetGrain<IOrderGrain>(orderId);
        var create = NewOrder(userId);

        var first = await order.Create(create);
        var retried = await order.Create(create);
        Assert.Equal(first, retried);

        var paid = await order.Pay(new OrderCommand("pay-once"));
        var paidAgain = await order.Pay(new OrderCommand("pay-once"));
        Assert.Equal(paid, paidAgain);
        Assert.Equal(2, (await order.Get()).Version);

        // A new request id for the same transition is a new command, and illegal now.
        await Assert.ThrowsAsync<DomainConflictException>(() => order.Pay(new OrderCommand("pay-twice")));

        // A request id reused for a different command is refused.
        var reused = await Assert.ThrowsAsync<RuleViolationException>(() => order.Cancel(new CancelOrder("pay-once", null)));
        Assert.Equal("request_id_reused", reused.Code);

        var orders = await silo.Grains.GetGrain<IUserGrain>(userId).GetOrderIds();
        Assert.Equal([orderId], orders);
    }

    [Fact]
    public async Task Creating_an_existing_order_with_another_request_id_is_a_conflict()
    {
        var userId = await RegisteredUser();
        var order = silo.Grains.GetGrain<IOrderGrain>(Ids.New("ord"));
        await order.Create(NewOrder(userId));
        var conflict = await Assert.ThrowsAsync<DomainConflictException>(() => order.Create(NewOrder(userId)));
        Assert.Equal("order_exists", conflict.Code);
    }

    [Fact]
    public async Task An_order_for_a_user_who_does_not_exist_is_refused_and_not_stored()
    {
        var order = silo.Grains.GetGrain<IOrderGrain>(Ids.New("ord"));
        var violation = await Assert.ThrowsAsync<RuleViolationException>(() => order.Create(NewOrder(Ids.New("ghost"))));
        Assert.Equal("user_not_found", violation.Code);
        await Assert.ThrowsAsync<EntityNotFoundException>(() => order.Get());
    }

    [Fact]
    public async Task Order_lines_are_validated()
    {
        var userId = await RegisteredUser();
        var order = silo.Grains.GetGrain<IOrderGrain>(Ids.New("ord"));
        var zero = await Assert.ThrowsAsync<InvalidInputException>(() => order.Create(new CreateOrder("r1", userId, [new OrderLine("a", 0, 1m)])));
        Assert.Equal("invalid_quantity", zero.Code);
        var negative = await Assert.ThrowsAsync<InvalidInputException>(() => order.Create(new CreateOrder("r2", userId, [new OrderLine("a", 1, -0.01m)])));
        Assert.Equal("invalid_unit_price", negative.Code);
        var empty = await Assert.ThrowsAsync<InvalidInputException>(() => order.Create(new CreateOrder("r3", userId, [])));
        Assert.Equal("no_lines", empty.Code);
        var free = await order.Create(new CreateOrder("r4", userId, [new OrderLine("gift", 1, 0m)]));
        Assert.Equal(0m, free.Total);
    }

    [Fact]
    public async Task User_profiles_are_validated_registered_once_and_versioned()
    {
        var userId = Ids.New("user");
        var user = silo.Grains.GetGrain<IUserGrain>(userId);
        Assert.False(await user.Exists());
        var email = await Assert.ThrowsAsync<InvalidInputException>(() => user.Register(new RegisterUser("r1", "not-an-email", "Name")));
        Assert.Equal("invalid_email", email.Code);
        var name = await Assert.ThrowsAsync<InvalidInputException>(() => user.Register(new RegisterUser("r1", "a@example.com", "   ")));
        Assert.Equal("invalid_display_name", name.Code);
        await Assert.ThrowsAsync<InvalidInputException>(() => user.Register(new RegisterUser("r1", "a@example.com", new string('x', 101))));
        await Assert.ThrowsAsync<EntityNotFoundException>(() => user.Get());

        var registered = await user.Register(new RegisterUser("r2", " a@example.com ", " Ada "));
        Assert.Equal("a@example.com", registered.Email);
        Assert.Equal("Ada", registered.DisplayName);
        Assert.Equal(registered, await user.Register(new RegisterUser("r2", "a@example.com", "Ada")));
        await Assert.ThrowsAsync<DomainConflictException>(() => user.Register(new RegisterUser("r3", "a@example.com", "Ada")));

        var updated = await user.UpdateProfile(new UpdateUserProfile("u1", null, "Ada L.", ExpectedVersion: 1));
        Assert.Equal(2, updated.Version);
        Assert.Equal("a@example.com", updated.Email);
        var stale = await Assert.ThrowsAsync<DomainConflictException>(() => user.UpdateProfile(new UpdateUserProfile("u2", "b@example.com", null, ExpectedVersion: 1)));
        Assert.Equal("version_mismatch", stale.Code);
    }

    [Fact]
    public async Task A_device_needs_an_owner_who_exists()
    {
        var device = silo.Grains.GetGrain<IDeviceGrain>(Ids.New("dev"));
        var violation = await Assert.ThrowsAsync<RuleViolationException>(() => device.Register(new RegisterDevice("r1", Ids.New("ghost"), "gw-1", "sensor", "TH-100")));
        Assert.Equal("owner_not_found", violation.Code);
        await Assert.ThrowsAsync<EntityNotFoundException>(() => device.Get());
    }

    [Fact]
    public async Task Device_twin_properties_are_versioned_merged_and_guarded()
    {
        var userId = await RegisteredUser();
        var deviceId = Ids.New("dev");
        var device = silo.Grains.GetGrain<IDeviceGrain>(deviceId);
        var registered = await device.Register(new RegisterDevice("r1", userId, "gw-1", "camera", "CAM-9"));
        Assert.Equal(0, registered.Desired.Version);
        Assert.Equal(DeviceConnection.Unknown, registered.Connection);
        Assert.Equal([deviceId], await silo.Grains.GetGrain<IUserGrain>(userId).GetDeviceIds());

        var desired = await device.UpdateDesired(new UpdateDeviceProperties("d1", new Dictionary<string, string?> { ["modelVersion"] = "\"1.4.0\"", ["samplingRateHz"] = "50" }));
        Assert.Equal(1, desired.Desired.Version);
        Assert.Equal("50", desired.Desired.Values["samplingRateHz"]);

        desired = await device.UpdateDesired(new UpdateDeviceProperties("d2", new Dictionary<string, string?> { ["samplingRateHz"] = null, ["threshold"] = "{ \"max\": 3 }" }, ExpectedVersion: 1));
        Assert.Equal(2, desired.Desired.Version);
        Assert.False(desired.Desired.Values.ContainsKey("samplingRateHz"));
        Assert.Equal("{\"max\":3}", desired.Desired.Values["threshold"]);

        var stale = await Assert.ThrowsAsync<DomainConflictException>(() => device.UpdateDesired(new UpdateDeviceProperties("d3", new Dictionary<string, string?> { ["a"] = "1" }, ExpectedVersion: 1)));
        Assert.Equal("version_mismatch", stale.Code);
        var badJson = await Assert.ThrowsAsync<InvalidInputException>(() => device.UpdateDesired(new UpdateDeviceProperties("d4", new Dictionary<string, string?> { ["a"] = "{oops" })));
        Assert.Equal("invalid_property_value", badJson.Code);

        var reported = await device.UpdateReported(new UpdateDeviceProperties("p1", new Dictionary<string, string?> { ["modelVersion"] = "\"1.4.0\"" }));
        Assert.Equal(1, reported.Reported.Version);
        Assert.Equal(2, reported.Desired.Version);
        Assert.Equal(DeviceConnection.Online, reported.Connection);
        Assert.NotNull(reported.LastSeen);

        var offline = await device.SetConnection(new SetDeviceConnection("c1", Online: false, At: reported.LastSeen!.Value.AddSeconds(5)));
        Assert.Equal(DeviceConnection.Offline, offline.Connection);
    }

    [Fact]
    public async Task The_log_of_processed_commands_is_bounded()
    {
        var userId = await RegisteredUser();
        var device = silo.Grains.GetGrain<IDeviceGrain>(Ids.New("dev"));
        await device.Register(new RegisterDevice("r", userId, "gw-1", "sensor", "TH-100"));
        UpdateDeviceProperties Update(int i) => new($"d{i}", new Dictionary<string, string?> { ["step"] = "1" });

        DeviceView last = null!;
        for (var i = 0; i < DeviceRules.MaxLoggedCommands + 1; i++)
        {
            last = await device.UpdateDesired(Update(i));
        }

        // Registration and d0 have been dropped from the log; d16 is still in it.
        Assert.Equal(last, await device.UpdateDesired(Update(DeviceRules.MaxLoggedCommands)));
        var replayed = await device.UpdateDesired(Update(0));
        Assert.Equal(last.Desired.Version + 1, replayed.Desired.Version);
    }

    [Fact]
    public async Task Summaries_and_alerts_are_applied_once_per_gateway_seq()
    {
        var userId = await RegisteredUser();
        var deviceId = Ids.New("dev");
        var device = silo.Grains.GetGrain<IDeviceGrain>(deviceId);
        await device.Register(new RegisterDevice("r1", userId, "gw-1", "sensor", "TH-100"));
        var start = DateTimeOffset.UtcNow.AddMinutes(-2);
        DeviceSummary Summary(long seq, DateTimeOffset from, double mean) =>
            new($"gw-1:{deviceId}:{seq}", "gw-1", seq, from, from.AddMinutes(1), "temperature", 60, mean - 1, mean + 1, mean, 0.4, 0.1, 0, "v1");
        DeviceAlert Alert(long seq, DateTimeOffset at, string kind) =>
            new($"gw-1:{deviceId}:{seq}", "gw-1", seq, at, kind, 27, 0.97, 0.5, "v1", 1234);

        var summary = Summary(1, start, 21.5);
        Assert.True(await device.ApplySummary(summary));
        Assert.False(await device.ApplySummary(summary));
        // A later seq with an older window is applied but does not replace the latest summary.
        Assert.True(await device.ApplySummary(Summary(2, start.AddMinutes(-1), 19)));

        Assert.True(await device.ApplyAlert(Alert(3, start, "temperature")));
        Assert.False(await device.ApplyAlert(Alert(3, start, "temperature")));
        Assert.True(await device.ApplyAlert(Alert(4, start.AddSeconds(30), "vibration")));
        // At or below the highest applied seq is a duplicate, whatever the item.
        Assert.False(await device.ApplyAlert(Alert(1, start.AddSeconds(40), "vibration")));

        var notFinite = Summary(5, start, 21) with { Mean = double.NaN };
        Assert.Equal("invalid_summary", (await Assert.ThrowsAsync<InvalidInputException>(() => device.ApplySummary(notFinite))).Code);
        var otherGateway = Summary(6, start, 21) with { GatewayId = "gw-2", ItemId = $"gw-2:{deviceId}:6" };
        Assert.Equal("device_of_another_gateway", (await Assert.ThrowsAsync<RuleViolationException>(() => device.ApplySummary(otherGateway))).Code);

        var view = await device.Get();
        Assert.Equal($"gw-1:{deviceId}:1", view.LatestSummary!.ItemId);
        Assert.Equal(21.5, view.LatestSummary.Mean);
        Assert.Equal(2, view.Alerts.Total);
        Assert.Equal(1, view.Alerts.ByKind["temperature"]);
        Assert.Equal(1, view.Alerts.ByKind["vibration"]);
        Assert.Equal(start.AddSeconds(30), view.Alerts.LastAt);
        Assert.Equal("vibration", view.Alerts.LastKind);
        Assert.Equal(4, view.LatestAlert!.Seq);
        Assert.Equal(4, view.HighestSeq["gw-1"]);
        Assert.Equal(DeviceConnection.Online, view.Connection);
    }
}
