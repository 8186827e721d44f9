using System.Globalization;
using System.Text;
using Microsoft.Extensions.Options;
namespace CloudEdge.Grains;

internal sealed class DeviceGrain : Grain, IDeviceGrain
{
    private readonly IPersistentState<DeviceState> state;
    private readonly TimeProvider time;
    private readonly DevicePresenceOptions presence;
    private readonly StreamOutbox<DeviceEvent> outbox;
    private IGrainTimer? presenceTimer;

    public DeviceGrain(
        [PersistentState("device", PlatformStorage.Name)] IPersistentState<DeviceState> state,
        TimeProvider time,
        IOptions<DevicePresenceOptions> presence)
    {
        this.state = state;
        this.time = time;
        this.presence = presence.Value;
        outbox = new StreamOutbox<DeviceEvent>(this, () => state.State.Outbox, state.WriteOrReloadAsync);
    }

    private string DeviceId => this.GetPrimaryKeyString();

    private DeviceState S => state.State;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        ArmPresenceTimer();
        // Events the last activation stored but did not publish (it stopped or failed first).
        return outbox.ActivateAsync(cancellationToken);
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => outbox.DeactivateAsync(cancellationToken);

    public async Task<DeviceView> Register(RegisterDevice command)
    {
        ArgumentNullException.ThrowIfNull(command);
        Identifiers.EnsureRequestId(command.RequestId);
        Identifiers.EnsureId(command.OwnerId, "ownerId");
        Identifiers.EnsureId(command.GatewayId, "gatewayId");
        var kind = DeviceRules.NormalizeLabel(command.Kind, "kind", DeviceRules.MaxKindLength);
        var model = DeviceRules.NormalizeLabel(command.Model, "model", DeviceRules.MaxModelLength);
        var fingerprint = $"register\n{command.OwnerId}\n{command.GatewayId}\n{kind}\n{model}";
        var owner = GrainFactory.GetGrain<IUserGrain>(command.OwnerId);
        if (S.Commands.TryGetResult(command.RequestId, fingerprint, out var earlier) && earlier is not null)
        {
            // The first attempt may have stored the device and failed before the owner or gateway recorded it.
            await owner.AttachDevice(DeviceId);
            await GrainFactory.GetGrain<IGatewayGrain>(command.GatewayId).AttachDevice(DeviceId);
            await DevicesDirectory().Add(DeviceId);
            return earlier;
        }

        if (S.Registered)
        {
            throw new DomainConflictException("device_exists", $"Device '{DeviceId}' is already registered.");
        }

        if (!await owner.Exists())
        {
            throw new RuleViolationException("owner_not_found", $"Device '{DeviceId}' cannot be registered: owner '{command.OwnerId}' does not exist.");
        }

        S.Registered = true;
        S.OwnerId = command.OwnerId;
        S.GatewayId = command.GatewayId;
        S.Kind = kind;
        S.Model = model;
        S.RegisteredAt = time.GetUtcNow();
        S.Listed = true;
        var view = View();
        S.Commands.Record(command.RequestId, fingerprint, view, DeviceRules.MaxLoggedCommands);
        await outbox.SaveAsync();
        await owner.AttachDevice(DeviceId);
        await GrainFactory.GetGrain<IGatewayGrain>(command.GatewayId).AttachDevice(DeviceId);
        await DevicesDirectory().Add(DeviceId);
        return view;
    }

    public Task<DeviceView> Get() => Task.FromResult(View(EnsureRegistered()));

    public Task<DeviceView> UpdateDesired(UpdateDeviceProperties command) => UpdateProperties(command, desired: true);

    public Task<DeviceView> UpdateReported(UpdateDeviceProperties command) => UpdateProperties(command, desired: false);

    private async Task<DeviceView> UpdateProperties(UpdateDeviceProperties command, bool desired)
    {
        ArgumentNullException.ThrowIfNull(command);
        Identifiers.EnsureRequestId(command.RequestId);
        var changes = DeviceRules.NormalizeChanges(command.Properties);
        var fingerprint = Fingerprint(desired ? "desired" : "reported", changes, command.ExpectedVersion);
        if (S.Commands.TryGetResult(command.RequestId, fingerprint, out var earlier) && earlier is not null)
        {
            return earlier;
        }

        EnsureRegistered();
        var set = desired ? S.Desired : S.Reported;
        if (command.ExpectedVersion is { } expected && expected != set.Version)
        {
            throw new DomainConflictException("version_mismatch", $"The {(desired ? "desired" : "reported")} properties of device '{DeviceId}' are at version {set.Version}, not {expected}.");
        }

        var values = new Dictionary<string, string>(set.Values, StringComparer.Ordinal);
        foreach (var (name, value) in changes)
        {
            if (value is null)
            {
                values.Remove(name);
            }
            else
            {
                values[name] = value;
            }
        }

        if (values.Count > DeviceRules.MaxProperties)
        {
            throw new RuleViolationException("too_many_properties", $"Device '{DeviceId}' would have {values.Count} properties; at most {DeviceRules.MaxProperties} are allowed.");
        }

        var now = time.GetUtcNow();
        var before = StatusNow();
        set.Values = values;
        set.Version++;
        set.UpdatedAt = now;
        if (!desired)
        {
            MarkSeen(now, online: true);
        }

        return await CommitPresenceCommandAsync(command.RequestId, fingerprint, before);
    }

    public async Task<DeviceView> SetConnection(SetDeviceConnection command)
    {
        ArgumentNullException.ThrowIfNull(command);
        Identifiers.EnsureRequestId(command.RequestId);
        var fingerprint = $"connection\n{command.Online}\n{command.At?.ToString("O", CultureInfo.InvariantCulture)}";
        if (S.Commands.TryGetResult(command.RequestId, fingerprint, out var earlier) && earlier is not null)
        {
            return earlier;
        }

        EnsureRegistered();
        var before = StatusNow();
        MarkSeen(command.At ?? time.GetUtcNow(), command.Online);
        return await CommitPresenceCommandAsync(command.RequestId, fingerprint, before);
    }

    public async Task<IReadOnlyList<UplinkOutcome>> ApplyUplink(IReadOnlyList<DeviceUplinkItem> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var outcomes = new UplinkOutcome[items.Count];
        var applied = false;
        for (var i = 0; i < items.Count; i++)
        {
            outcomes[i] = Apply(items[i]);
            applied |= outcomes[i].Status == UplinkStatus.Applied;
        }

        if (applied)
        {
            var joining = !S.Listed;
            S.Listed = true;
            await outbox.SaveAsync();
            ArmPresenceTimer();
            if (joining)
            {
                await DevicesDirectory().Add(DeviceId);
            }
        }
        else if (outbox.HasPending)
        {
            // Events an earlier call stored but failed to publish: a retried uplink (all duplicates) gets them out.
            await outbox.PublishAsync();
        }

        return outcomes;
    }

    public async Task<bool> ApplySummary(DeviceSummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        return Applied(await ApplyUplink([new DeviceUplinkItem(summary, null)]));
    }

    public async Task<bool> ApplyAlert(DeviceAlert alert)
    {
        ArgumentNullException.ThrowIfNull(alert);
        return Applied(await ApplyUplink([new DeviceUplinkItem(null, alert)]));
    }

    /// <summary>The single-item API answers with the exceptions of the other commands.</summary>
    private bool Applied(IReadOnlyList<UplinkOutcome> outcomes)
    {
        var outcome = outcomes[0];
        return outcome.Status switch
        {
            UplinkStatus.Applied => true,
            UplinkStatus.Duplicate => false,
            _ when outcome.Code == "unknown_device" => throw new EntityNotFoundException("device_not_found", $"Device '{DeviceId}' is not registered."),
            _ when outcome.Code == "device_of_another_gateway" => throw new RuleViolationException(outcome.Code, $"Device '{DeviceId}' belongs to gateway '{S.GatewayId}'."),
            _ => throw new InvalidInputException(outcome.Code ?? "invalid_item", "item", $"The item was rejected: {outcome.Code}."),
        };
    }

    /// <summary>Applies one item to the in-memory state; the caller writes once for the whole list.</summary>
    private UplinkOutcome Apply(DeviceUplinkItem? item)
    {
        if (item is null || (item.Summary is null) == (item.Alert is null))
        {
            return UplinkOutcome.Rejected(item?.ItemId ?? string.Empty, "invalid_item");
        }

        var itemId = item.ItemId;
        var gatewayId = item.Summary?.GatewayId ?? item.Alert!.GatewayId;
        var seq = item.Summary?.Seq ?? item.Alert!.Seq;
        var problem = item.Summary is { } checkedSummary ? DeviceRules.CheckSummary(checkedSummary) : DeviceRules.CheckAlert(item.Alert!);
        if (problem is { } invalid)
        {
            return UplinkOutcome.Rejected(itemId, invalid.Code);
        }

        if (!S.Registered)
        {
            return UplinkOutcome.Rejected(itemId, "unknown_device");
        }

        if (!string.Equals(S.GatewayId, gatewayId, StringComparison.Ordinal))
        {
            return UplinkOutcome.Rejected(itemId, "device_of_another_gateway");
        }

        if (S.HighestSeq.TryGetValue(gatewayId, out var highest) && seq <= highest)
        {
            return UplinkOutcome.Duplicate(itemId);
        }

        // Items without a context of their own belong to the trace of the uplink request that carried them.
        var traceParent = (item.Summary is { } withContext ? withContext.TraceParent : item.Alert!.TraceParent) ?? TraceContext.CurrentCall();
        var before = StatusNow();
        if (item.Summary is { } received)
        {
            var summary = received with { Kind = received.Kind.Trim(), TraceParent = traceParent, Links = received.Links?.ToArray() };
            // A gateway's backlog can deliver windows late: keep the summary with the latest window.
            if (S.LatestSummary is null || summary.WindowEnd >= S.LatestSummary.WindowEnd)
            {
                S.LatestSummary = summary;
            }

            MarkSeenByUplink(summary.WindowEnd);
            S.ModelVersion = summary.ModelVersion ?? S.ModelVersion;
            AddEvent(new DeviceEvent(PlatformStreams.SummaryEvent, DeviceId, S.GatewayId, summary.WindowEnd, summary, null, null));
        }
        else
        {
            var alert = item.Alert! with { Kind = item.Alert.Kind.Trim(), TraceParent = traceParent };
            var counters = S.Alerts;
            var kind = alert.Kind;
            counters.Total++;
            if (counters.ByKind.ContainsKey(kind) || counters.ByKind.Count < DeviceRules.MaxAlertKinds)
            {
                counters.ByKind[kind] = counters.ByKind.GetValueOrDefault(kind) + 1;
            }

            if (counters.LastAt is null || alert.At >= counters.LastAt)
            {
                counters.LastAt = alert.At;
                counters.LastKind = kind;
                S.LatestAlert = alert;
            }

            MarkSeenByUplink(alert.At);
            S.ModelVersion = alert.ModelVersion ?? S.ModelVersion;
            AddEvent(new DeviceEvent(PlatformStreams.AlertEvent, DeviceId, S.GatewayId, alert.At, null, alert, null));
        }

        AddStatusEventIfChanged(before, traceParent);
        S.HighestSeq[gatewayId] = seq;
        return UplinkOutcome.Applied(itemId);
    }

    private void MarkSeen(DateTimeOffset at, bool online)
    {
        if (S.LastSeen is null || at >= S.LastSeen)
        {
            S.LastSeen = at;
            S.Connection = online ? DeviceConnection.Online : DeviceConnection.Offline;
        }
    }

    /// <summary>
    /// An uplink item shows the device was alive when the item was produced. Edge clocks can run
    /// ahead, so a time in the future counts as now; data older than the silence limit (a backlog)
    /// does not bring the device back online.
    /// </summary>
    private void MarkSeenByUplink(DateTimeOffset at)
    {
        var now = time.GetUtcNow();
        var seen = at > now ? now : at;
        if (S.LastSeen is null || seen >= S.LastSeen)
        {
            S.LastSeen = seen;
            S.Connection = now - seen < presence.OfflineAfter ? DeviceConnection.Online : DeviceConnection.Offline;
        }
    }

    /// <summary>
    /// Arms a one-shot timer for the moment the device's silence reaches the limit. Views also
    /// compute the status from the clock, so an activation collected before the timer fired still
    /// answers correctly; the timer makes the stored status follow.
    /// </summary>
    private void ArmPresenceTimer()
    {
        presenceTimer?.Dispose();
        presenceTimer = null;
        if (S.Connection != DeviceConnection.Online || S.LastSeen is not { } seen)
        {
            return;
        }

        var due = seen + presence.OfflineAfter - time.GetUtcNow();
        presenceTimer = this.RegisterGrainTimer(OnSilence, new GrainTimerCreationOptions(due > TimeSpan.Zero ? due : TimeSpan.Zero, Timeout.InfiniteTimeSpan));
    }

    private async Task OnSilence(CancellationToken cancellationToken)
    {
        if (S.Connection == DeviceConnection.Online && S.LastSeen is { } seen && time.GetUtcNow() - seen >= presence.OfflineAfter)
        {
            var before = StatusNow();
            S.Connection = DeviceConnection.Offline;
            AddStatusEventIfChanged(before, traceParent: null);
            await outbox.SaveAsync();
        }

        ArmPresenceTimer();
    }

    private IDirectoryGrain DevicesDirectory() => GrainFactory.GetGrain<IDirectoryGrain>(IDirectoryGrain.Devices);

    private (DeviceConnection Connection, string? ModelVersion) StatusNow() => (S.Connection, S.ModelVersion);

    private void AddEvent(DeviceEvent deviceEvent) =>
        outbox.Add(deviceEvent, PlatformStreams.StreamsOf(deviceEvent), deviceEvent.TraceParent);

    /// <summary>
    /// The end of a command that can change presence: its status event if any, the command's result in the
    /// log (a retry gets it back), one state write with the events, and the presence timer re-armed.
    /// </summary>
    private async Task<DeviceView> CommitPresenceCommandAsync(string requestId, string fingerprint, (DeviceConnection Connection, string? ModelVersion) before)
    {
        AddStatusEventIfChanged(before, traceParent: null);
        var view = View();
        S.Commands.Record(requestId, fingerprint, view, DeviceRules.MaxLoggedCommands);
        await outbox.SaveAsync();
        ArmPresenceTimer();
        return view;
    }

    /// <summary>A status event when the stored connection or the model version changed (in the trace of the item that changed it, if any).</summary>
    private void AddStatusEventIfChanged((DeviceConnection Connection, string? ModelVersion) before, string? traceParent)
    {
        if (before == StatusNow())
        {
            return;
        }

        var status = new DeviceEvent(PlatformStreams.StatusEvent, DeviceId, S.GatewayId, time.GetUtcNow(), null, null, new DeviceStatus(S.Connection, S.ModelVersion, S.LastSeen));
        outbox.Add(status, PlatformStreams.StreamsOf(status), traceParent);
    }

    private DeviceConnection EffectiveConnection(DeviceState s) =>
        s.Connection == DeviceConnection.Online && s.LastSeen is { } seen && time.GetUtcNow() - seen >= presence.OfflineAfter
            ? DeviceConnection.Offline
            : s.Connection;

    private static string Fingerprint(string kind, Dictionary<string, string?> changes, long? expectedVersion)
    {
        var text = new StringBuilder(kind).Append('\n').Append(expectedVersion?.ToString(CultureInfo.InvariantCulture));
        foreach (var (name, value) in changes.OrderBy(c => c.Key, StringComparer.Ordinal))
        {
            text.Append('\n').Append(name).Append('=').Append(value ?? "(remove)");
        }

        return text.ToString();
    }

    private DeviceState EnsureRegistered() =>
        S.Registered ? S : throw new EntityNotFoundException("device_not_found", $"Device '{DeviceId}' is not registered.");

    private DeviceView View() => View(S);

    private DeviceView View(DeviceState s) => new(
        DeviceId,
        s.OwnerId,
        s.GatewayId,
        s.Kind,
        s.Model,
        s.RegisteredAt,
        Snapshot(s.Desired),
        Snapshot(s.Reported),
        EffectiveConnection(s),
        s.LastSeen,
        s.LatestSummary,
        s.LatestAlert,
        new AlertCounters(s.Alerts.Total, new Dictionary<string, long>(s.Alerts.ByKind, StringComparer.Ordinal), s.Alerts.LastAt, s.Alerts.LastKind),
        new Dictionary<string, long>(s.HighestSeq, StringComparer.Ordinal));

    private static DeviceProperties Snapshot(PropertySetState set) =>
        new(set.Version, new Dictionary<string, string>(set.Values, StringComparer.Ordinal), set.UpdatedAt);
}
