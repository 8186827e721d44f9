namespace CloudEdge.Grains;

internal sealed class GatewayGrain : Grain, IGatewayGrain
{
    public const int MaxErrorLength = 1024;

    private readonly IPersistentState<GatewayState> state;
    private readonly TimeProvider time;
    private readonly StreamOutbox<DeviceEvent> outbox;

    public GatewayGrain([PersistentState("gateway", PlatformStorage.Name)] IPersistentState<GatewayState> state, TimeProvider time)
    {
        this.state = state;
        this.time = time;
        outbox = new StreamOutbox<DeviceEvent>(this, () => state.State.Outbox, state.WriteOrReloadAsync);
    }

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // Events the last activation stored but did not publish (it stopped or failed first).
        return outbox.ActivateAsync(cancellationToken);
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => outbox.DeactivateAsync(cancellationToken);

    private string GatewayId => this.GetPrimaryKeyString();

    private GatewayState S => state.State;

    public Task<GatewayView> Get() =>
        state.RecordExists
            ? Task.FromResult(View())
            : throw new EntityNotFoundException("gateway_not_found", $"Nothing is known about gateway '{GatewayId}': no device, uplink, desired or reported model.");

    public async Task AttachDevice(string deviceId)
    {
        Identifiers.EnsureId(deviceId, "deviceId");
        if (S.DeviceIds.Contains(deviceId, StringComparer.Ordinal))
        {
            return;
        }

        S.DeviceIds.Add(deviceId);
        await SaveAsync();
    }

    public async Task<IReadOnlyList<UplinkOutcome>> RecordUplink(GatewayUplink uplink)
    {
        ArgumentNullException.ThrowIfNull(uplink);
        var outcomes = new List<UplinkOutcome>(uplink.Drops.Count);
        long applied = 0, duplicates = 0, rejected = 0;
        foreach (var drops in uplink.Drops)
        {
            var outcome = ApplyDrops(drops, uplink.ReceivedAt);
            outcomes.Add(outcome);
            switch (outcome.Status)
            {
                case UplinkStatus.Applied: applied++; break;
                case UplinkStatus.Duplicate: duplicates++; break;
                default: rejected++; break;
            }
        }

        // Devices registered before gateways kept device lists, or whose registration stopped short of
        // attaching, join the list when their items arrive.
        foreach (var deviceId in uplink.DeviceIds)
        {
            if (Identifiers.IsValidId(deviceId) && !S.DeviceIds.Contains(deviceId, StringComparer.Ordinal))
            {
                S.DeviceIds.Add(deviceId);
            }
        }

        S.Uplinks++;
        S.LastUplinkAt = S.LastUplinkAt is { } last && last > uplink.ReceivedAt ? last : uplink.ReceivedAt;
        S.Applied += uplink.Applied + applied;
        S.Duplicates += uplink.Duplicates + duplicates;
        S.Rejected += uplink.Rejected + rejected;
        await SaveAsync();
        return outcomes;
    }

    private UplinkOutcome ApplyDrops(GatewayDrops drops, DateTimeOffset receivedAt)
    {
        if (drops.Seq < 1)
        {
            return UplinkOutcome.Rejected(drops.ItemId, "invalid_seq");
        }

        if (drops.Summaries < 0 || drops.Alerts < 0 || drops.Readings < 0
            || (drops.Reason is { } reason && (reason.Length > DeviceRules.MaxKindLength || reason.Any(char.IsControl))))
        {
            return UplinkOutcome.Rejected(drops.ItemId, "invalid_drops");
        }

        if (drops.Seq <= S.HighestDropsSeq)
        {
            return UplinkOutcome.Duplicate(drops.ItemId);
        }

        S.HighestDropsSeq = drops.Seq;
        S.DropReports++;
        S.DroppedSummaries += drops.Summaries;
        S.DroppedAlerts += drops.Alerts;
        S.DroppedReadings += drops.Readings;
        S.LastDropReason = drops.Reason ?? S.LastDropReason;
        S.LastDropAt = receivedAt;
        return UplinkOutcome.Applied(drops.ItemId);
    }

    public Task<GatewayDesired> GetDesired() => Task.FromResult(Desired());

    public async Task<GatewayDesired> SetDesired(SetGatewayDesired command)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Model is { } model)
        {
            Identifiers.EnsureId(model.Name, "model.name");
            Identifiers.EnsureId(model.Version, "model.version");
            if (model.Sha256 is not { Length: 64 } || model.Size < 0)
            {
                throw new InvalidInputException("invalid_model", "model", "A desired model needs the sha256 and size of its bytes.");
            }
        }

        if (command.ExpectedVersion is { } expected && expected != S.DesiredVersion)
        {
            throw new DomainConflictException("version_mismatch", $"The desired properties of gateway '{GatewayId}' are at version {S.DesiredVersion}, not {expected}.");
        }

        // Setting what is already desired changes nothing, so a retried PUT does not make agents reload.
        if (Equals(command.Model, S.DesiredModel) && state.RecordExists)
        {
            return Desired();
        }

        S.DesiredModel = command.Model;
        S.DesiredVersion++;
        S.DesiredUpdatedAt = time.GetUtcNow();
        var change = new DeviceEvent(PlatformStreams.DesiredEvent, null, GatewayId, S.DesiredUpdatedAt.Value, null, null, null);
        outbox.Add(change, [PlatformStreams.Format(PlatformStreams.DesiredStream(GatewayId))], TraceContext.CurrentCall());
        await SaveAsync();
        return Desired();
    }

    public async Task<GatewayReported> SetReported(ReportGatewayModel command)
    {
        ArgumentNullException.ThrowIfNull(command);
        Identifiers.EnsureId(command.Name, "model.name");
        Identifiers.EnsureId(command.Version, "model.version");
        if (!Enum.IsDefined(command.Status))
        {
            throw new InvalidInputException("invalid_status", "model.status", "Unknown model status.");
        }

        if (command.Error is { Length: > MaxErrorLength })
        {
            throw new InvalidInputException("invalid_error", "model.error", $"An error message is at most {MaxErrorLength} characters.");
        }

        var reported = new ReportedModel(command.Name, command.Version, command.Status, command.Error);
        var now = time.GetUtcNow();
        if (reported != S.ReportedModel || !state.RecordExists)
        {
            S.ReportedModel = reported;
            S.ReportedVersion++;
            // The running version is what a fleet view shows; failures and progress are in the gateway's view.
            var running = reported.Status == ModelStatus.Running ? reported.Version : null;
            var status = new DeviceEvent(PlatformStreams.StatusEvent, null, GatewayId, now, null, null, new DeviceStatus(DeviceConnection.Online, running, now));
            outbox.Add(status, PlatformStreams.StreamsOf(status), traceParent: null);
        }

        S.ReportedUpdatedAt = now;
        await SaveAsync();
        return Reported();
    }

    /// <summary>Writes the state with the events it holds, publishes them, and lists the gateway in the directory the first time.</summary>
    private async Task SaveAsync()
    {
        var joining = !S.Listed;
        S.Listed = true;
        await outbox.SaveAsync();
        if (joining)
        {
            await GrainFactory.GetGrain<IDirectoryGrain>(IDirectoryGrain.Gateways).Add(GatewayId);
        }
    }

    private GatewayDesired Desired() => new(S.DesiredVersion, S.DesiredModel, S.DesiredUpdatedAt);

    private GatewayReported Reported() => new(S.ReportedVersion, S.ReportedModel, S.ReportedUpdatedAt);

    private GatewayView View() => new(
        GatewayId,
        S.DeviceIds.ToArray(),
        new GatewayHealth(
            S.LastUplinkAt,
            S.Uplinks,
            S.Applied,
            S.Duplicates,
            S.Rejected,
            new DropCounters(S.DropReports, S.DroppedSummaries, S.DroppedAlerts, S.DroppedReadings, S.LastDropReason, S.LastDropAt)),
        Desired(),
        Reported());
}
