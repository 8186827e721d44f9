using System.Diagnostics;

namespace CloudEdge.Grains;

/// <summary>W3C trace context (<c>traceparent</c>) as carried by uplink items and by Orleans' RequestContext.</summary>
public static class TraceContext
{
    /// <summary>The key Orleans' activity propagation uses for the caller's context in <see cref="RequestContext"/>.</summary>
    public const string TraceParentKey = "traceparent";

    /// <summary>
    /// True for <c>00-{32 hex trace id}-{16 hex span id}-{2 hex flags}</c> with non-zero ids (version 00;
    /// later versions may append fields after the flags).
    /// </summary>
    public static bool IsValid(string? traceParent)
    {
        if (traceParent is null || traceParent.Length < 55 || traceParent.Length > 256)
        {
            return false;
        }

        if (traceParent[2] != '-' || traceParent[35] != '-' || traceParent[52] != '-'
            || !IsLowerHex(traceParent.AsSpan(0, 2)) || traceParent.StartsWith("ff", StringComparison.Ordinal)
            || !IsLowerHex(traceParent.AsSpan(3, 32)) || !IsLowerHex(traceParent.AsSpan(36, 16)) || !IsLowerHex(traceParent.AsSpan(53, 2)))
        {
            return false;
        }

        if (traceParent.AsSpan(3, 32).IndexOfAnyExcept('0') < 0 || traceParent.AsSpan(36, 16).IndexOfAnyExcept('0') < 0)
        {
            return false;
        }

        // Version 00 is exactly 55 characters; a later version may append fields after a '-'.
        return traceParent.Length == 55 || (traceParent[55] == '-' && !traceParent.StartsWith("00", StringComparison.Ordinal));
    }

    /// <summary>The 32-hex trace id of a valid traceparent, else null.</summary>
    public static string? TraceIdOf(string? traceParent) => IsValid(traceParent) ? traceParent![3..35] : null;

    /// <summary>
    /// The traceparent of the call being served: Orleans' activity propagation puts the caller's context in
    /// <see cref="RequestContext"/>; a grain span of a listening host is the current activity.
    /// </summary>
    public static string? CurrentCall()
    {
        if (Activity.Current is { IdFormat: ActivityIdFormat.W3C, Id: { } id } && IsValid(id))
        {
            return id;
        }

        return RequestContext.Get(TraceParentKey) is string current && IsValid(current) ? current : null;
    }

    private static bool IsLowerHex(ReadOnlySpan<char> text)
    {
        foreach (var c in text)
        {
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f')))
            {
                return false;
            }
        }

        return true;
    }
}
