using System.Diagnostics;
using CloudEdge.EdgePipeline.Inference;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Outbox;
using CloudEdge.EdgePipeline.Tracing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace CloudEdge.EdgePipeline.Scoring;

/// <summary>
/// Scores journaled readings: each reading's features from its device's history of that kind (oldest first, so
/// readings of one device in one batch see each other), then one model run for the whole batch across devices.
/// Writes an alert for an anomalous reading. Owns the histories and the feature and score buffers.
/// </summary>
internal sealed class ScoringStage(OutboxStore outbox, EdgeTelemetry telemetry, int historyCapacity, ILogger logger)
{
    private readonly Dictionary<(string Device, SensorKind Kind), ReadingHistory> _histories = [];
    private float[] _rows = new float[FeatureSpec.FeatureCount * 64];
    private float[] _scores = new float[64];

    /// <summary>Alerts written since the last <see cref="TakeAlertsWritten"/> (committed or not).</summary>
    private int _alertsWritten;

    /// <summary>The scores of <paramref name="entries"/>, in order; valid until the next call.</summary>
    public ReadOnlySpan<float> Score(AnomalyModel model, List<JournaledReading> entries)
    {
        const int f = FeatureSpec.FeatureCount;
        var n = entries.Count;
        if (_scores.Length < n)
        {
            _scores = new float[Math.Max(n, _scores.Length * 2)];
            _rows = new float[_scores.Length * f];
        }
        for (var i = 0; i < n; i++)
        {
            var reading = entries[i].Reading;
            var history = History(reading.DeviceId, reading.Kind);
            model.Features.Compute(reading.Kind, reading.Value, history, _rows.AsSpan(i * f, f));
            history.Add(reading.Value);
        }
        var started = Stopwatch.GetTimestamp();
        using (ReadingTraces.StartInferenceBatch(model.Version, n))
        {
            model.Score(_rows, n, _scores);
        }
        if (telemetry.InferenceDuration.Enabled) telemetry.InferenceDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
        telemetry.InferenceBatch.Record(n);
        return _scores.AsSpan(0, n);
    }

    /// <summary>An anomalous reading's alert, under the reading's traceparent (a new one when it carried none).</summary>
    public void Alert(SqliteConnection connection, SqliteTransaction transaction, AnomalyModel model, SensorReading reading, double score, DateTimeOffset now)
    {
        var traceParent = reading.TraceParent ?? ReadingTraces.NewTraceParent();
        outbox.InsertAlert(connection, transaction, reading, score, model.Threshold, model.Version, traceParent, now);
        _alertsWritten++;
        telemetry.Alerts.Add(1, new KeyValuePair<string, object?>("kind", SensorKinds.Name(reading.Kind)));
        logger.LogWarning("Anomaly on {DeviceId} {Kind}: value {Value} scored {Score} (threshold {Threshold}, model {Model}, trace {TraceParent})",
            reading.DeviceId, SensorKinds.Name(reading.Kind), reading.Value, score, model.Threshold, model.Version, traceParent);
    }

    /// <summary>Whether an alert was written since the last call: the uplink is woken urgently (a rolled-back one only sends early).</summary>
    public bool TakeAlertsWritten()
    {
        var any = _alertsWritten > 0;
        _alertsWritten = 0;
        return any;
    }

    /// <summary>Forgets every history (recovery rebuilds them from the journal).</summary>
    public void Reset() => _histories.Clear();

    private ReadingHistory History(string device, SensorKind kind)
    {
        if (!_histories.TryGetValue((device, kind), out var history))
        {
            history = new ReadingHistory(historyCapacity);
            _histories[(device, kind)] = history;
        }
        return history;
    }
}
