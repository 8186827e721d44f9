using CloudEdge.EdgePipeline.Ingest;
using Microsoft.Data.Sqlite;

namespace CloudEdge.EdgePipeline.Pruning;

/// <summary>
/// Deletes the journal's prefix that is no longer needed: below the oldest reading of any open window (the rest is
/// summarised) and older than <see cref="RedeliveryHorizon"/>.
/// </summary>
internal sealed class JournalPruner
{
    /// <summary>
    /// Journal rows stay at least this long after their commit, whatever their window: they are what recognises a
    /// QoS 1 resend after a restart. A sensor resends what it has no PUBACK for, and a PUBACK can be lost with the
    /// killed process moments after the commit (so its reading's window may already be summarised).
    /// </summary>
    public static readonly TimeSpan RedeliveryHorizon = TimeSpan.FromSeconds(30);

    private readonly Queue<(long FirstId, DateTimeOffset At)> _recentBatches = new();
    private long _prunedBelow;

    /// <summary>A batch starting at journal id <paramref name="firstId"/> was journaled at <paramref name="at"/>.</summary>
    public void Journaled(long firstId, DateTimeOffset at) => _recentBatches.Enqueue((firstId, at));

    /// <param name="nextId">The id the next journaled reading gets.</param>
    /// <param name="oldestOpen">The journal id of the oldest reading still in an open window (or <paramref name="nextId"/>).</param>
    public void Prune(SqliteConnection connection, SqliteTransaction transaction, DateTimeOffset now, long nextId, Func<long, long> oldestOpen)
    {
        while (_recentBatches.Count > 0 && _recentBatches.Peek().At < now - RedeliveryHorizon) _recentBatches.Dequeue();
        var boundary = oldestOpen(_recentBatches.Count > 0 ? _recentBatches.Peek().FirstId : nextId);
        if (boundary <= _prunedBelow) return;
        ReadingJournal.PruneBelow(connection, transaction, boundary);
        _prunedBelow = boundary;
    }

    public void Reset()
    {
        _recentBatches.Clear();
        _prunedBelow = 0;
    }
}
