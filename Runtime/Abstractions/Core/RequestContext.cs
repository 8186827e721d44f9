using System.Collections.Immutable;
using System.ComponentModel;

namespace CloudEdge.Runtime;

/// <summary>
/// Values that flow with a call chain, across await points and grain calls (like HTTP headers for
/// grain calls). The runtime carries W3C trace context (<c>traceparent</c>, <c>tracestate</c>) here.
/// Keep values small and immutable: they are copied into every outgoing call.
/// </summary>
public static class RequestContext
{
    private static readonly AsyncLocal<ImmutableDictionary<string, object>?> Current = new();

    public static object? Get(string key) =>
        Current.Value is { } values && values.TryGetValue(key, out var value) ? value : null;

    public static void Set(string key, object value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        Current.Value = (Current.Value ?? ImmutableDictionary<string, object>.Empty.WithComparers(StringComparer.Ordinal)).SetItem(key, value);
    }

    public static bool Remove(string key)
    {
        if (Current.Value is not { } values || !values.ContainsKey(key))
        {
            return false;
        }

        var rest = values.Remove(key);
        Current.Value = rest.IsEmpty ? null : rest;
        return true;
    }

    public static void Clear() => Current.Value = null;

    /// <summary>The current values, for the runtime to put into an outgoing call. Null when empty.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public static ImmutableDictionary<string, object>? Export() => Current.Value;

    /// <summary>Replaces the current values with those that arrived with a call.</summary>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public static void Import(ImmutableDictionary<string, object>? values) =>
        Current.Value = values is { IsEmpty: false } ? values : null;
}
