using Microsoft.Extensions.Options;

namespace CloudEdge.Streaming;

/// <summary>Settings of one PostgreSQL stream provider (named options, keyed by the provider's name).</summary>
public sealed class PostgresStreamOptions
{
    /// <summary>The Npgsql connection string of the database that holds the stream tables (0500_streams.sql).</summary>
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>Queues the streams are hashed onto; the silos share them out (default 8). Keep it fixed for a database's life: a stream's queue follows from it.</summary>
    public int QueueCount { get; set; } = 8;

    /// <summary>
    /// How often an idle receiver looks at its queue (default 50 ms). With <see cref="UseNotifications"/> a receiver
    /// is also woken by each append, so this is the fallback cadence, not the delivery latency.
    /// </summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Appends send a PostgreSQL NOTIFY that wakes the queue's receiver at once (default true).</summary>
    public bool UseNotifications { get; set; } = true;

    /// <summary>Events older than this are deleted once delivered (default 7 days).</summary>
    public TimeSpan RetentionMaxAge { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Only the last this many events of each stream are kept once delivered (default 10,000).</summary>
    public int RetentionMaxEventsPerStream { get; set; } = 10_000;

    /// <summary>How often each queue's receiver applies retention (default 1 minute, on the provider's TimeProvider).</summary>
    public TimeSpan RetentionPeriod { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Events a receiver reads from its queue at most per poll (default 256).</summary>
    public int ReadBatchSize { get; set; } = 256;
}

internal sealed class PostgresStreamOptionsValidator : IValidateOptions<PostgresStreamOptions>
{
    public ValidateOptionsResult Validate(string? name, PostgresStreamOptions options)
    {
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            failures.Add($"Stream provider '{name}': ConnectionString is required.");
        }

        if (options.QueueCount is < 1 or > 1024)
        {
            failures.Add($"Stream provider '{name}': QueueCount must be between 1 and 1024 (was {options.QueueCount}).");
        }

        if (options.PollInterval <= TimeSpan.Zero || options.PollInterval > TimeSpan.FromMinutes(1))
        {
            failures.Add($"Stream provider '{name}': PollInterval must be positive and at most 1 minute (was {options.PollInterval}).");
        }

        if (options.RetentionMaxAge <= TimeSpan.Zero)
        {
            failures.Add($"Stream provider '{name}': RetentionMaxAge must be positive (was {options.RetentionMaxAge}).");
        }

        if (options.RetentionMaxEventsPerStream < 1)
        {
            failures.Add($"Stream provider '{name}': RetentionMaxEventsPerStream must be at least 1 (was {options.RetentionMaxEventsPerStream}).");
        }

        if (options.RetentionPeriod <= TimeSpan.Zero)
        {
            failures.Add($"Stream provider '{name}': RetentionPeriod must be positive (was {options.RetentionPeriod}).");
        }

        if (options.ReadBatchSize < 1)
        {
            failures.Add($"Stream provider '{name}': ReadBatchSize must be at least 1 (was {options.ReadBatchSize}).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
