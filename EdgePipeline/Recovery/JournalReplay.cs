using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Storage;
using Microsoft.Data.Sqlite;

namespace CloudEdge.EdgePipeline.Recovery;

/// <summary>
/// What a restart (or a failed batch) replays from the journal: readings whose processing was committed only
/// rebuild histories and open windows (their windows already summarised are skipped); readings above the
/// <c>processed</c> mark are processed again, alerts included.
/// </summary>
internal sealed record JournalReplay(List<JournaledReading> Processed, List<JournaledReading> Pending, HashSet<string> ClosedWindows)
{
    public int Count => Processed.Count + Pending.Count;

    public JournaledReading? First => Processed.Count > 0 ? Processed[0] : Pending.Count > 0 ? Pending[0] : null;

    public static JournalReplay Read(SqliteConnection connection)
    {
        var all = ReadingJournal.ReadAll(connection);
        var processed = EdgeDatabase.GetState(connection, ReadingJournal.ProcessedKey);
        return new JournalReplay(
            all.Where(e => e.Id <= processed).ToList(),
            all.Where(e => e.Id > processed).ToList(),
            all.Count > 0 ? ReadingJournal.ClosedWindows(connection) : []);
    }
}
