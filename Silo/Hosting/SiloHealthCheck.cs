using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CloudEdge.Silo.Hosting;

/// <summary>A grain whose only job is to prove that activation, calls and the platform storage work.</summary>
[Alias("cloudedge.IHealthProbeGrain")]
public interface IHealthProbeGrain : IGrainWithStringKey
{
    /// <summary>Writes and returns an incremented counter.</summary>
    Task<long> Probe();
}

[GenerateSerializer]
[Alias("cloudedge.HealthProbeState")]
public sealed class HealthProbeState
{
    [Id(0)]
    public long Probes { get; set; }
}

internal sealed class HealthProbeGrain([PersistentState("probe", Grains.PlatformStorage.Name)] IPersistentState<HealthProbeState> state) : Grain, IHealthProbeGrain
{
    public async Task<long> Probe()
    {
        state.State.Probes++;
        await state.WriteStateAsync();
        return state.State.Probes;
    }
}

/// <summary>
/// Readiness: Orleans counts this silo as active in the cluster, and a call to a probe grain that
/// writes its state succeeds within the timeout.
/// </summary>
internal sealed class SiloHealthCheck(IGrainFactory grains, IServiceProvider services, ILocalSiloDetails silo, PostgresReadiness readiness) : IHealthCheck
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (readiness.Failure is not null)
        {
            return HealthCheckResult.Unhealthy("Orleans waits for PostgreSQL.");
        }

        var status = services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.GetSiloStatus(silo.SiloAddress);
        if (status != SiloStatus.Active)
        {
            return HealthCheckResult.Unhealthy($"The silo is {status} in the cluster, not Active.", data: new Dictionary<string, object> { ["siloStatus"] = status.ToString() });
        }

        try
        {
            // One probe grain per silo keeps silos that share a storage from fighting over one record.
            var probe = grains.GetGrain<IHealthProbeGrain>("health-" + silo.SiloAddress.ToParsableString());
            var count = await probe.Probe().WaitAsync(Timeout, cancellationToken);
            return HealthCheckResult.Healthy("Silo active; grain call and storage write succeeded.",
                new Dictionary<string, object> { ["siloStatus"] = status.ToString(), ["probes"] = count });
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("A grain call with a storage write failed.", ex, new Dictionary<string, object> { ["siloStatus"] = status.ToString() });
        }
    }
}

/// <summary>Readiness: the schema migration at start has reached PostgreSQL.</summary>
internal sealed class PostgresHealthCheck(PostgresReadiness readiness) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(readiness.Failure is { } failure ? HealthCheckResult.Unhealthy(failure) : HealthCheckResult.Healthy("PostgreSQL schema is migrated."));
}
