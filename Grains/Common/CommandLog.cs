namespace CloudEdge.Grains;

/// <summary>One processed command: its client request id, what it was, and the result it returned.</summary>
[GenerateSerializer]
[Alias("cloudedge.CommandRecord")]
public sealed class CommandRecord<TResult>
{
    [Id(0)]
    public string RequestId { get; set; } = string.Empty;

    /// <summary>The command's name and arguments, so that a request id reused for another command is refused.</summary>
    [Id(1)]
    public string Fingerprint { get; set; } = string.Empty;

    [Id(2)]
    public TResult? Result { get; set; }
}

/// <summary>
/// The bounded log of processed commands kept in a grain's state. A retried command finds its record
/// and gets the same result without being applied again. The oldest records are dropped first, so a
/// retry older than <see cref="DefaultCapacity"/> (or the capacity given to <see cref="Record"/>) later
/// commands is treated as a new command.
/// </summary>
[GenerateSerializer]
[Alias("cloudedge.CommandLog")]
public sealed class CommandLog<TResult>
{
    public const int DefaultCapacity = 64;

    [Id(0)]
    public List<CommandRecord<TResult>> Entries { get; set; } = [];

    /// <summary>True with the earlier result when this request id was processed with the same fingerprint.</summary>
    /// <exception cref="RuleViolationException">The request id was used for a different command.</exception>
    public bool TryGetResult(string requestId, string fingerprint, out TResult? result)
    {
        foreach (var entry in Entries)
        {
            if (string.Equals(entry.RequestId, requestId, StringComparison.Ordinal))
            {
                if (!string.Equals(entry.Fingerprint, fingerprint, StringComparison.Ordinal))
                {
                    throw new RuleViolationException("request_id_reused",
                        $"Request id '{requestId}' was already used for a different command.");
                }

                result = entry.Result;
                return true;
            }
        }

        result = default;
        return false;
    }

    public void Record(string requestId, string fingerprint, TResult result, int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Entries.Add(new CommandRecord<TResult> { RequestId = requestId, Fingerprint = fingerprint, Result = result });
        if (Entries.Count > capacity)
        {
            Entries.RemoveRange(0, Entries.Count - capacity);
        }
    }
}
