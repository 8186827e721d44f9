using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace CloudEdge.Streaming;

/// <summary>
/// LISTENs on one connection per silo and provider for the appends' NOTIFY and wakes the receiver of the
/// queue named in each. Notifications only shorten the wait: receivers also poll, so a dropped listener
/// connection (re-opened after a pause) costs latency, never events.
/// </summary>
internal sealed partial class QueueNotifications : IAsyncDisposable
{
    private static readonly TimeSpan ReconnectDelay = TimeSpan.FromSeconds(1);

    private readonly PostgresStreamStore store;
    private readonly ILogger logger;
    private readonly ConcurrentDictionary<int, QueueSignal> signals = new();
    private readonly CancellationTokenSource stopping = new();
    private readonly Lock gate = new();
    private Task? listening;

    public QueueNotifications(PostgresStreamStore store, ILogger<QueueNotifications> logger)
    {
        this.store = store;
        this.logger = logger;
    }

    /// <summary>The signal of a queue; the first call starts listening.</summary>
    public QueueSignal For(int queueId)
    {
        lock (gate)
        {
            listening ??= Task.Run(ListenAsync);
        }

        return signals.GetOrAdd(queueId, _ => new QueueSignal());
    }

    private async Task ListenAsync()
    {
        var token = stopping.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await using var connection = await store.DataSource.OpenConnectionAsync(token);
                connection.Notification += OnNotification;
                await using (var listen = new NpgsqlCommand($"LISTEN {PostgresStreamStore.NotificationChannel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(token);
                }

                // Appends made while nobody listened were not announced.
                WakeAll();
                while (true)
                {
                    await connection.WaitAsync(token);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception)
            {
                LogListenFailed(exception, store.Provider, ReconnectDelay);
                WakeAll();
                try
                {
                    await Task.Delay(ReconnectDelay, token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        var separator = e.Payload.IndexOf(':', StringComparison.Ordinal);
        if (separator > 0
            && e.Payload.AsSpan(separator + 1).SequenceEqual(store.Provider)
            && int.TryParse(e.Payload.AsSpan(0, separator), NumberStyles.None, CultureInfo.InvariantCulture, out var queueId)
            && signals.TryGetValue(queueId, out var signal))
        {
            signal.Set();
        }
    }

    private void WakeAll()
    {
        foreach (var signal in signals.Values)
        {
            signal.Set();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync();
        if (listening is not null)
        {
            await listening.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stream provider '{Provider}': listening for append notifications failed; receivers poll meanwhile, retrying in {Delay}.")]
    private partial void LogListenFailed(Exception exception, string provider, TimeSpan delay);
}

/// <summary>An auto-reset signal: a <see cref="Set"/> with nobody waiting is kept for the next wait.</summary>
internal sealed class QueueSignal
{
    private readonly Lock gate = new();
    private TaskCompletionSource? waiter;
    private bool pending;

    public void Set()
    {
        TaskCompletionSource? woken;
        lock (gate)
        {
            woken = waiter;
            waiter = null;
            pending = woken is null;
        }

        woken?.TrySetResult();
    }

    /// <summary>True when set (before or during the wait), false after <paramref name="timeout"/> or cancellation.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        TaskCompletionSource current;
        lock (gate)
        {
            if (pending)
            {
                pending = false;
                return true;
            }

            current = waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        // Stays on the caller's scheduler: receivers run on their pulling agent's.
        await current.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);
        lock (gate)
        {
            if (ReferenceEquals(waiter, current))
            {
                waiter = null;
            }
        }

        return current.Task.IsCompleted;
    }
}
