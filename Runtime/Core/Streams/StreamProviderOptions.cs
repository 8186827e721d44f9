using Microsoft.Data.Sqlite;

namespace CloudEdge.Runtime.Streams;

/// <summary>Delivery and retention settings of a stream provider.</summary>
public class StreamProviderOptions
{
    /// <summary>Attempts per event and subscriber before the event is dead-lettered (default 5).</summary>
    public int MaxDeliveryAttempts { get; set; } = 5;

    /// <summary>Wait before the first retry; doubles per attempt up to <see cref="MaxRetryDelay"/> (default 200 ms).</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a grain's turn may take over one event, from the moment the turn starts (time queued behind
    /// the grain's other turns does not count), before the attempt counts as failed (default 1 minute).
    /// External observers have none: a reader that waits (a full Server-Sent Events buffer) is backpressure, not failure.
    /// </summary>
    public TimeSpan DeliveryTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Events read from the store per delivery batch (default 256); the cursor is saved after each batch.</summary>
    public int DeliveryBatchSize { get; set; } = 256;

    /// <summary>Events older than this are deleted (default: kept whatever their age). Retention applies whether or not every subscriber has read them.</summary>
    public TimeSpan? RetentionMaxAge { get; set; }

    /// <summary>Only the last this many events of each stream are kept (default: no limit).</summary>
    public long? RetentionMaxEventsPerStream { get; set; }

    /// <summary>How often retention runs (default 1 minute), on the silo's TimeProvider.</summary>
    public TimeSpan RetentionPeriod { get; set; } = TimeSpan.FromMinutes(1);

    internal void Validate(string name)
    {
        if (MaxDeliveryAttempts < 1 || DeliveryBatchSize < 1 || RetryDelay < TimeSpan.Zero || MaxRetryDelay < RetryDelay || RetentionPeriod <= TimeSpan.Zero || DeliveryTimeout <= TimeSpan.Zero
            || RetentionMaxAge <= TimeSpan.Zero || RetentionMaxEventsPerStream < 1)
        {
            throw new InvalidOperationException(
                $"Stream provider '{name}': MaxDeliveryAttempts and DeliveryBatchSize must be at least 1, RetryDelay zero or more and at most MaxRetryDelay, " +
                "RetentionPeriod, DeliveryTimeout and RetentionMaxAge positive, RetentionMaxEventsPerStream at least 1.");
        }
    }
}

/// <summary>The in-memory stream provider (tests, transient data): events and subscriptions live until the silo stops.</summary>
public sealed class MemoryStreamProviderOptions : StreamProviderOptions;

/// <summary>The durable stream provider on SQLite.</summary>
public sealed class SqliteStreamProviderOptions : StreamProviderOptions
{
    /// <summary>Directory of the database file (<c>streams-{name}.db</c>); created if missing. Default: <c>data</c> under the content root.</summary>
    public string? DataDirectory { get; set; }

    /// <summary>A full connection string; overrides <see cref="DataDirectory"/>.</summary>
    public string? ConnectionString { get; set; }

    internal string ResolveConnectionString(string defaultDirectory, string providerName)
    {
        if (!string.IsNullOrWhiteSpace(ConnectionString))
        {
            return ConnectionString;
        }

        var directory = string.IsNullOrWhiteSpace(DataDirectory) ? defaultDirectory : DataDirectory;
        Directory.CreateDirectory(directory);
        return new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(directory, $"streams-{providerName}.db"),
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString();
    }
}
