namespace CloudEdge.Testing.Otlp;

/// <summary>The spans of one trace checked as a tree: every parent id must be a collected span, or the given external root.</summary>
public static class TraceTree
{
    /// <summary>
    /// Spans whose parent was not collected. A root span (no parent) is not an orphan; nor is a child of
    /// <paramref name="externalParentSpanId"/>, a parent some other tool started and never exported (mosquitto_pub's
    /// <c>traceparent</c>, say).
    /// </summary>
    public static IReadOnlyList<OtlpSpan> Orphans(IReadOnlyList<OtlpSpan> trace, string? externalParentSpanId = null)
    {
        var ids = trace.Select(s => s.SpanId).ToHashSet(StringComparer.Ordinal);
        return [.. trace.Where(s => s.ParentSpanId is { } parent && !ids.Contains(parent) && parent != externalParentSpanId)];
    }

    /// <summary>Spans with no parent, or whose parent is the external one: a connected trace has exactly one such root (or several children of the external parent).</summary>
    public static IReadOnlyList<OtlpSpan> Roots(IReadOnlyList<OtlpSpan> trace, string? externalParentSpanId = null) =>
        [.. trace.Where(s => s.ParentSpanId is null || s.ParentSpanId == externalParentSpanId)];

    /// <summary>The chain of ancestors from a span up to its root (the span first), within the collected spans.</summary>
    public static IReadOnlyList<OtlpSpan> Ancestry(IReadOnlyList<OtlpSpan> trace, OtlpSpan span)
    {
        var byId = trace.GroupBy(s => s.SpanId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var chain = new List<OtlpSpan> { span };
        var current = span;
        while (current.ParentSpanId is { } parent && byId.TryGetValue(parent, out var next) && chain.Count <= trace.Count)
        {
            chain.Add(next);
            current = next;
        }

        return chain;
    }

    /// <summary>One line per span, for failure messages.</summary>
    public static string Describe(IEnumerable<OtlpSpan> spans) => string.Join('\n', spans.Select(s => s.ToString()));
}
