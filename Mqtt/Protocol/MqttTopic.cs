namespace CloudEdge.Mqtt;

/// <summary>Topic names, topic filters and matching (section 4.7), and shared subscriptions (4.8.2).</summary>
public static class MqttTopic
{
    public const string SharedPrefix = "$share/";

    /// <summary>A topic name for PUBLISH: non-empty, no wildcard characters, no U+0000.</summary>
    public static bool IsValidTopicName(string topic) =>
        topic.Length > 0 && topic.AsSpan().IndexOfAny('+', '#', '\0') < 0;

    /// <summary>A topic filter: non-empty; '+' fills a whole level; '#' fills the last level only.</summary>
    public static bool IsValidTopicFilter(string filter)
    {
        if (filter.Length == 0 || filter.Contains('\0')) return false;
        var span = filter.AsSpan();
        var levelStart = 0;
        for (var i = 0; i <= span.Length; i++)
        {
            if (i < span.Length && span[i] != '/') continue;
            var level = span[levelStart..i];
            if (level.Length > 1 && level.IndexOfAny('+', '#') >= 0) return false;
            if (level.Length == 1 && level[0] == '#' && i != span.Length) return false;
            levelStart = i + 1;
        }
        return true;
    }

    public static bool ContainsWildcard(string filter) => filter.AsSpan().IndexOfAny('+', '#') >= 0;

    /// <summary>
    /// Splits "$share/{group}/{filter}". Returns false when <paramref name="filter"/> is not shared;
    /// throws nothing: an invalid shared form (empty or wildcard group, no inner filter) yields
    /// <paramref name="valid"/> = false.
    /// </summary>
    public static bool TryParseShared(string filter, out string group, out string innerFilter, out bool valid)
    {
        group = "";
        innerFilter = filter;
        valid = true;
        if (!filter.StartsWith(SharedPrefix, StringComparison.Ordinal)) return false;
        var rest = filter.AsSpan(SharedPrefix.Length);
        var slash = rest.IndexOf('/');
        if (slash <= 0 || slash == rest.Length - 1)
        {
            valid = false;
            return true;
        }
        group = rest[..slash].ToString();
        innerFilter = rest[(slash + 1)..].ToString();
        valid = group.AsSpan().IndexOfAny('+', '#') < 0 && IsValidTopicFilter(innerFilter);
        return true;
    }

    /// <summary>
    /// Whether <paramref name="topic"/> matches <paramref name="filter"/>. Topics starting with '$' are
    /// not matched by a filter starting with a wildcard (4.7.2).
    /// </summary>
    public static bool Matches(string filter, string topic) => Matches(filter.AsSpan(), topic.AsSpan());

    public static bool Matches(ReadOnlySpan<char> filter, ReadOnlySpan<char> topic)
    {
        if (topic.Length > 0 && topic[0] == '$' && filter.Length > 0 && (filter[0] == '+' || filter[0] == '#')) return false;
        while (true)
        {
            var fSlash = filter.IndexOf('/');
            var fLevel = fSlash < 0 ? filter : filter[..fSlash];
            if (fLevel.Length == 1 && fLevel[0] == '#') return true;
            var tSlash = topic.IndexOf('/');
            var tLevel = tSlash < 0 ? topic : topic[..tSlash];
            if (!(fLevel.Length == 1 && fLevel[0] == '+') && !fLevel.SequenceEqual(tLevel)) return false;
            if (fSlash < 0 && tSlash < 0) return true;
            if (tSlash < 0)
            {
                // "a/#" matches "a": the parent level of a multi-level wildcard.
                return filter[(fSlash + 1)..] is ['#'];
            }
            if (fSlash < 0) return false;
            filter = filter[(fSlash + 1)..];
            topic = topic[(tSlash + 1)..];
        }
    }

    /// <summary>
    /// Whether every topic that <paramref name="filter"/> can match is also matched by <paramref name="covering"/>:
    /// used to authorize a subscription against an ACL pattern.
    /// </summary>
    public static bool Covers(string covering, string filter)
    {
        var c = covering.Split('/');
        var f = filter.Split('/');
        for (var i = 0; i < c.Length; i++)
        {
            if (c[i] == "#") return true;
            if (i >= f.Length) return false;
            if (f[i] == "#") return false;
            if (c[i] == "+") continue;
            if (f[i] == "+" || c[i] != f[i]) return false;
        }
        return c.Length == f.Length;
    }
}
