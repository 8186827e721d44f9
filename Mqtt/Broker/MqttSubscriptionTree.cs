namespace CloudEdge.Mqtt.Broker;

/// <summary>One client's subscription to a filter.</summary>
internal sealed class MqttSubscriptionEntry(MqttSession session, string filter, MqttSubscription options, uint? subscriptionId, string? shareGroup)
{
    public MqttSession Session { get; } = session;
    /// <summary>The filter as the client sent it (with "$share/group/" when shared).</summary>
    public string Filter { get; } = filter;
    public MqttSubscription Options { get; } = options;
    public uint? SubscriptionId { get; } = subscriptionId;
    public string? ShareGroup { get; } = shareGroup;
}

/// <summary>
/// Topic-level tree of subscriptions. Matching walks only the branches a topic can reach; lookups use
/// span keys, so matching allocates nothing but the result list.
/// </summary>
internal sealed class MqttSubscriptionTree
{
    private sealed class Node
    {
        public readonly Dictionary<string, Node> Children = new(StringComparer.Ordinal);
        public readonly Dictionary<string, MqttSubscriptionEntry> Subscribers = new(StringComparer.Ordinal);
        public readonly Dictionary<string, SharedGroup> Shared = new(StringComparer.Ordinal);
        public bool IsEmpty => Children.Count == 0 && Subscribers.Count == 0 && Shared.Count == 0;
    }

    private sealed class SharedGroup
    {
        public readonly List<MqttSubscriptionEntry> Members = [];
        public int Next;
    }

    private readonly Node _root = new();
    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);

    public void Add(string innerFilter, MqttSubscriptionEntry entry)
    {
        _lock.EnterWriteLock();
        try
        {
            var node = _root;
            foreach (var level in innerFilter.Split('/'))
            {
                if (!node.Children.TryGetValue(level, out var child)) node.Children[level] = child = new Node();
                node = child;
            }
            var clientId = entry.Session.ClientId;
            if (entry.ShareGroup is null)
            {
                node.Subscribers[clientId] = entry;
                return;
            }
            if (!node.Shared.TryGetValue(entry.ShareGroup, out var group)) node.Shared[entry.ShareGroup] = group = new SharedGroup();
            group.Members.RemoveAll(m => m.Session.ClientId == clientId);
            group.Members.Add(entry);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public void Remove(string innerFilter, string? shareGroup, MqttSession session)
    {
        _lock.EnterWriteLock();
        try
        {
            RemoveAt(_root, innerFilter.Split('/'), 0, shareGroup, session);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    private static void RemoveAt(Node node, string[] levels, int index, string? shareGroup, MqttSession session)
    {
        if (index == levels.Length)
        {
            if (shareGroup is null)
            {
                if (node.Subscribers.TryGetValue(session.ClientId, out var e) && e.Session == session) node.Subscribers.Remove(session.ClientId);
            }
            else if (node.Shared.TryGetValue(shareGroup, out var group))
            {
                group.Members.RemoveAll(m => m.Session == session);
                if (group.Members.Count == 0) node.Shared.Remove(shareGroup);
            }
            return;
        }
        if (!node.Children.TryGetValue(levels[index], out var child)) return;
        RemoveAt(child, levels, index + 1, shareGroup, session);
        if (child.IsEmpty) node.Children.Remove(levels[index]);
    }

    /// <summary>Adds every subscription matching <paramref name="topic"/>; one member per shared group.</summary>
    public void Match(string topic, List<MqttSubscriptionEntry> result)
    {
        _lock.EnterReadLock();
        try
        {
            MatchAt(_root, topic.AsSpan(), isRoot: true, dollar: topic.StartsWith('$'), result);
        }
        finally
        {
            _lock.ExitReadLock();
        }
    }

    private static void MatchAt(Node node, ReadOnlySpan<char> rest, bool isRoot, bool dollar, List<MqttSubscriptionEntry> result)
    {
        var lookup = node.Children.GetAlternateLookup<ReadOnlySpan<char>>();
        var wildcardsAllowed = !(isRoot && dollar);
        if (wildcardsAllowed && lookup.TryGetValue("#", out var hash)) Collect(hash, result);
        var slash = rest.IndexOf('/');
        var level = slash < 0 ? rest : rest[..slash];
        if (lookup.TryGetValue(level, out var exact)) Descend(exact, rest, slash, dollar, result);
        if (wildcardsAllowed && lookup.TryGetValue("+", out var plus)) Descend(plus, rest, slash, dollar, result);
    }

    private static void Descend(Node child, ReadOnlySpan<char> rest, int slash, bool dollar, List<MqttSubscriptionEntry> result)
    {
        if (slash < 0)
        {
            Collect(child, result);
            // "a/#" also matches "a".
            if (child.Children.TryGetValue("#", out var parentHash)) Collect(parentHash, result);
            return;
        }
        MatchAt(child, rest[(slash + 1)..], isRoot: false, dollar, result);
    }

    private static void Collect(Node node, List<MqttSubscriptionEntry> result)
    {
        foreach (var entry in node.Subscribers.Values) result.Add(entry);
        foreach (var group in node.Shared.Values)
        {
            if (group.Members.Count == 0) continue;
            // Round robin, preferring a connected member; an offline persistent member still gets QoS>0 queued.
            var start = (int)((uint)Interlocked.Increment(ref group.Next) % (uint)group.Members.Count);
            var chosen = group.Members[start];
            for (var i = 0; i < group.Members.Count; i++)
            {
                var candidate = group.Members[(start + i) % group.Members.Count];
                if (candidate.Session.IsConnected)
                {
                    chosen = candidate;
                    break;
                }
            }
            result.Add(chosen);
        }
    }
}
