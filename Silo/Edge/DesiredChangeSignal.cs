using System.Collections.Concurrent;

namespace CloudEdge.Silo.Edge;

/// <summary>
/// Wakes long-polls of GET desired when an admin changes a gateway's desired properties on this
/// silo. A waiter takes the task before it reads the desired version, so a change between the read
/// and the wait is never missed. One small entry stays per gateway that long-polled since its last
/// change; a cluster of silos would need the grain to publish changes instead.
/// </summary>
internal sealed class DesiredChangeSignal
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> waiters = new(StringComparer.Ordinal);

    /// <summary>Completes at the next <see cref="Notify"/> for this gateway.</summary>
    public Task NextChange(string gatewayId) =>
        waiters.GetOrAdd(gatewayId, static _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    /// <summary>True while a request waits for (or is about to wait for) this gateway's next change.</summary>
    public bool HasWaiters(string gatewayId) => waiters.ContainsKey(gatewayId);

    public void Notify(string gatewayId)
    {
        if (waiters.TryRemove(gatewayId, out var waiter))
        {
            waiter.TrySetResult();
        }
    }
}
