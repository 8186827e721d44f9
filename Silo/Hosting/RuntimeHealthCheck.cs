using CloudEdge.Runtime;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CloudEdge.Silo.Hosting;

/// <summary>A grain whose only job is to prove that activation, calls and the default storage work.</summary>
public interface IHealthProbeGrain : IGrainWithStringKey
{
    /// <summary>Writes and returns an incremented counter.</summary>
    Task<long> Probe();
}

public sealed class HealthProbeState
{
    public long Probes { get; set; }
}

public sealed class HealthProbeGrain([PersistentState("probe")] IPersistentState<HealthProbeState> state) : Grain, IHealthProbeGrain
{
    public async Task<long> Probe()
    {
        state.State.Probes++;
        await state.WriteStateAsync();
        return state.State.Probes;
    }
}

/// <summary>Readiness: a call to a probe grain that writes its state must succeed within the timeout.</summary>
internal sealed class RuntimeHealthCheck(IGrainFactory grains) : IHealthCheck
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            // One probe grain per machine name keeps silos that share a storage from fighting over one record.
            var probe = grains.GetGrain<IHealthProbeGrain>("health-" + Environment.MachineName);
            var count = await probe.Probe().WaitAsync(Timeout, cancellationToken);
            return HealthCheckResult.Healthy("Grain call and storage write succeeded.", new Dictionary<string, object> { ["probes"] = count });
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("A grain call with a storage write failed.", ex);
        }
    }
}
