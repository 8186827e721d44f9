using System.Globalization;
using System.Text;
using CloudEdge.Runtime;

namespace CloudEdge.Grains;

public sealed class DeviceGrain : Grain, IDeviceGrain
{
    private readonly IPersistentState<DeviceState> state;
    private readonly TimeProvider time;
    private HashSet<string> appliedItems = new(StringComparer.Ordinal);

    public DeviceGrain([PersistentState("device")] IPersistentState<DeviceState> state)
    {
        this.state = state;
        time = ServiceProvider.GetService(typeof(TimeProvider)) as TimeProvider ?? TimeProvider.System;
    }

    private string DeviceId => GrainId.Key;

    private DeviceState S => state.State;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        appliedItems = new HashSet<string>(S.AppliedItemIds, StringComparer.Ordinal);
        return Task.CompletedTask;
    }

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
            // The first attempt may have stored the device and failed before the owner recorded it.
            await owner.AttachDevice(DeviceId);
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
        var view = View();
        S.Commands.Record(command.RequestId, fingerprint, view, DeviceRules.MaxLoggedCommands);
        await state.WriteOrReloadAsync();
        await owner.AttachDevice(DeviceId);
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
        set.Values = values;
        set.Version++;
        set.UpdatedAt = now;
        if (!desired)
        {
            MarkSeen(now, online: true);
        }

        var view = View();
        S.Commands.Record(command.RequestId, fingerprint, view, DeviceRules.MaxLoggedCommands);
        await state.WriteOrReloadAsync();
        return view;
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
        MarkSeen(command.At ?? time.GetUtcNow(), command.Online);
        var view = View();
        S.Commands.Record(command.RequestId, fingerprint, view, DeviceRules.MaxLoggedCommands);
        await state.WriteOrReloadAsync();
        return view;
    }

    public async Task<bool> ApplySummary(DeviceSummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        Identifiers.EnsureRequestId(summary.ItemId);
        if (summary.WindowEnd < summary.WindowStart || summary.SampleCount < 0)
        {
            throw new InvalidInputException("invalid_summary", "summary", "A summary's window must not end before it starts, and its sample count must not be negative.");
        }

        if (summary.Metrics is null || summary.Metrics.Count > DeviceRules.MaxMetrics
            || summary.Metrics.Any(m => !DeviceRules.IsValidPropertyName(m.Key) || !double.IsFinite(m.Value)))
        {
            throw new InvalidInputException("invalid_metrics", "metrics", $"A summary has at most {DeviceRules.MaxMetrics} metrics with property-style names and finite values.");
        }

        EnsureRegistered();
        if (appliedItems.Contains(summary.ItemId))
        {
            return false;
        }

        // Summaries can arrive out of order from a gateway's backlog: keep the one with the latest window.
        if (S.LatestSummary is null || summary.WindowEnd >= S.LatestSummary.WindowEnd)
        {
            S.LatestSummary = summary with { Metrics = new Dictionary<string, double>(summary.Metrics, StringComparer.Ordinal) };
        }

        MarkSeen(summary.WindowEnd, online: true);
        RememberItem(summary.ItemId);
        await state.WriteOrReloadAsync();
        return true;
    }

    public async Task<bool> ApplyAlert(DeviceAlert alert)
    {
        ArgumentNullException.ThrowIfNull(alert);
        Identifiers.EnsureRequestId(alert.ItemId);
        var code = DeviceRules.NormalizeLabel(alert.Code, "code", DeviceRules.MaxKindLength);
        if (!Enum.IsDefined(alert.Severity))
        {
            throw new InvalidInputException("invalid_severity", "severity", "Unknown alert severity.");
        }

        EnsureRegistered();
        if (appliedItems.Contains(alert.ItemId))
        {
            return false;
        }

        var counters = S.Alerts;
        switch (alert.Severity)
        {
            case AlertSeverity.Info: counters.Info++; break;
            case AlertSeverity.Warning: counters.Warning++; break;
            default: counters.Critical++; break;
        }

        if (counters.LastAt is null || alert.At >= counters.LastAt)
        {
            counters.LastAt = alert.At;
            counters.LastCode = code;
        }

        MarkSeen(alert.At, online: true);
        RememberItem(alert.ItemId);
        await state.WriteOrReloadAsync();
        return true;
    }

    private void MarkSeen(DateTimeOffset at, bool online)
    {
        if (S.LastSeen is null || at >= S.LastSeen)
        {
            S.LastSeen = at;
            S.Connection = online ? DeviceConnection.Online : DeviceConnection.Offline;
        }
    }

    private void RememberItem(string itemId)
    {
        S.AppliedItemIds.Add(itemId);
        appliedItems.Add(itemId);
        if (S.AppliedItemIds.Count > DeviceRules.MaxAppliedItemIds)
        {
            var dropped = S.AppliedItemIds.Count - DeviceRules.MaxAppliedItemIds;
            foreach (var id in S.AppliedItemIds.Take(dropped))
            {
                appliedItems.Remove(id);
            }

            S.AppliedItemIds.RemoveRange(0, dropped);
        }
    }

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
        s.Connection,
        s.LastSeen,
        s.LatestSummary,
        new AlertCounters(s.Alerts.Info + s.Alerts.Warning + s.Alerts.Critical, s.Alerts.Info, s.Alerts.Warning, s.Alerts.Critical, s.Alerts.LastAt, s.Alerts.LastCode));

    private static DeviceProperties Snapshot(PropertySetState set) =>
        new(set.Version, new Dictionary<string, string>(set.Values, StringComparer.Ordinal), set.UpdatedAt);
}
