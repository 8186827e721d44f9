using CloudEdge.Grains;
using CloudEdge.Silo.Live;

namespace CloudEdge.Silo.Edge;

/// <summary>
/// Wakes long-polls of GET desired when a gateway's desired model changes, on whichever silo the change
/// was made: the gateway grain publishes each change on the stream <c>desired/{gatewayId}</c>, and the
/// long-polls of this silo share one subscription to it (<see cref="LiveFeeds"/>). A waiter joins before
/// it reads the desired version, so a change between the read and the wait is never missed.
/// </summary>
internal sealed class DesiredChangeSignal(LiveFeeds feeds)
{
    public async Task<Watch> WatchAsync(string gatewayId, CancellationToken cancellationToken)
    {
        var watch = new Watch();
        watch.Membership = await feeds.JoinAsync<DeviceEvent>(PlatformStreams.DesiredStream(gatewayId), watch.Changed, cancellationToken);
        return watch;
    }

    /// <summary>True while a request of this silo waits for (or is about to wait for) this gateway's next change.</summary>
    public bool HasWaiters(string gatewayId) => feeds.IsFollowed(PlatformStreams.DesiredStream(gatewayId));

    internal sealed class Watch : IAsyncDisposable
    {
        private TaskCompletionSource next = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IAsyncDisposable? Membership { get; set; }

        /// <summary>Completes at the first change published after this call.</summary>
        public Task NextChange() => Volatile.Read(ref next).Task;

        public void Changed(LiveEvent<DeviceEvent> change) =>
            Interlocked.Exchange(ref next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

        public ValueTask DisposeAsync() => Membership?.DisposeAsync() ?? ValueTask.CompletedTask;
    }
}
