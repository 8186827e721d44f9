using Microsoft.Data.Sqlite;

namespace CloudEdge.EdgePipeline.Ingest;

/// <summary>
/// The journal side of a group commit: a batch's readings less the redeliveries, appended under consecutive ids in
/// the batch's transaction. A refused transaction gives the ids back and forgets the readings, so a resend is
/// taken for new.
/// </summary>
internal sealed class JournalIntake(DuplicateFilter duplicates, EdgeTelemetry telemetry)
{
    /// <summary>The id the next journaled reading gets.</summary>
    public long NextId { get; set; } = 1;

    /// <summary>The batch's new readings; each reading's outcome (accepted or duplicate) in <paramref name="outcome"/>.</summary>
    public List<JournaledReading> Admit(List<IngestWork> batch, AcceptResult[] outcome, Func<DateTimeOffset, DateTimeOffset> windowStart)
    {
        var entries = new List<JournaledReading>(batch.Count);
        for (var i = 0; i < batch.Count; i++)
        {
            var reading = batch[i].Reading!;
            if (duplicates.TryAdd(reading))
            {
                entries.Add(new JournaledReading(reading, windowStart(reading.ReceivedAt)));
                outcome[i] = AcceptResult.Accepted;
            }
            else
            {
                outcome[i] = AcceptResult.Duplicate;
                telemetry.ReadingsDuplicate.Add(1);
            }
        }
        return entries;
    }

    public void Append(SqliteConnection connection, SqliteTransaction transaction, List<JournaledReading> entries)
    {
        ReadingJournal.Append(connection, transaction, entries, NextId);
        NextId += entries.Count;
    }

    /// <summary>The transaction holding <paramref name="entries"/> (first id <paramref name="firstId"/>) did not commit.</summary>
    public void Refused(List<JournaledReading> entries, long firstId)
    {
        NextId = firstId;
        foreach (var entry in entries) duplicates.Forget(entry.Reading);
    }

    /// <summary>After a restart: every journaled reading is known, so a sensor's resend is recognised.</summary>
    public void Remember(IEnumerable<JournaledReading> journaled)
    {
        foreach (var entry in journaled) duplicates.TryAdd(entry.Reading);
    }
}
