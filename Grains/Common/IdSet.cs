namespace CloudEdge.Grains;

/// <summary>
/// A stored list of ids in insertion order, with a set beside it so that adding is a lookup, not a scan:
/// the body of the directory grains.
/// </summary>
internal sealed class IdSet(Func<List<string>> ids)
{
    private HashSet<string>? known;

    /// <summary>Adds the id to the list; false when it is there already.</summary>
    public bool TryAdd(string id)
    {
        known ??= new HashSet<string>(ids(), StringComparer.Ordinal);
        if (!known.Add(id))
        {
            return false;
        }

        ids().Add(id);
        return true;
    }

    /// <summary>The list was read back from storage (a failed write): rebuild the set from it.</summary>
    public void Reset() => known = null;

    public (IReadOnlyList<string> Ids, int Total) Page(int offset, int limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var all = ids();
        return (all.Skip(offset).Take(limit).ToArray(), all.Count);
    }
}

internal static class IdSetStorage
{
    /// <summary>Adds the id and writes the state when it was new; after a failed write the set follows the list read back.</summary>
    public static async Task AddAndWriteAsync<TState>(this IdSet ids, string id, IPersistentState<TState> state)
    {
        if (!ids.TryAdd(id))
        {
            return;
        }

        try
        {
            await state.WriteOrReloadAsync();
        }
        catch
        {
            ids.Reset();
            throw;
        }
    }
}
