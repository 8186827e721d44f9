namespace CloudEdge.EdgePipeline.Uplink;

/// <summary>
/// How the pipeline wakes the uplink: after each commit of new outbox items, urgently when the commit held an alert.
/// One instance shared by the pipeline (which notifies) and the <see cref="UplinkSender"/> (which waits).
/// </summary>
public sealed class UplinkWakeup : IDisposable
{
    private readonly SemaphoreSlim _signal = new(0, 1);
    private readonly Lock _alertGate = new();
    private TaskCompletionSource _alertCommitted = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// New items were committed. <paramref name="alert"/>: among them an alert; it completes the task
    /// <see cref="PrepareRead"/> handed out, which ends the uplink's batching wait.
    /// </summary>
    public void ItemsCommitted(bool alert)
    {
        try
        {
            if (_signal.CurrentCount == 0) _signal.Release();
        }
        catch (SemaphoreFullException)
        {
        }
        catch (ObjectDisposedException)
        {
            return;
        }
        if (!alert) return;
        lock (_alertGate) _alertCommitted.TrySetResult();
    }

    /// <summary>Waits until items were committed; false when <paramref name="timeout"/> (on <paramref name="time"/>) passed first.</summary>
    public async Task<bool> WaitForItemsAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        using var expiry = new CancellationTokenSource(timeout, time);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, expiry.Token);
        try
        {
            await _signal.WaitAsync(wait.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Called by the uplink right before it reads a batch. Forgets a pending notification (the read covers what
    /// was committed before it, so it must not cause another wait for a batch) and returns a task that completes
    /// at the first alert committed after this call, so an alert the read misses still ends the batching wait that
    /// follows.
    /// </summary>
    public Task PrepareRead()
    {
        try
        {
            _signal.Wait(0);
        }
        catch (ObjectDisposedException)
        {
        }
        lock (_alertGate)
        {
            if (_alertCommitted.Task.IsCompleted) _alertCommitted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _alertCommitted.Task;
        }
    }

    public void Dispose() => _signal.Dispose();
}
