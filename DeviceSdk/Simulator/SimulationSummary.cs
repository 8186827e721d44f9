using System.Text.Json;
using System.Text.Json.Serialization;

namespace CloudEdge.Simulator;

/// <summary>What was sent, per device; written by --summary-file so a receiver can check it got exactly this.</summary>
internal sealed record SimulationSummary(
    DateTimeOffset StartedAt,
    DateTimeOffset FinishedAt,
    string Broker,
    string Protocol,
    [property: JsonPropertyName("qos")] int QoS,
    bool Interrupted,
    SimulationTotals Totals,
    IReadOnlyList<DeviceSummary> Devices)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}

internal sealed record SimulationTotals(long Sent, long Acked, long Failed);

/// <summary>
/// <c>Sent</c> readings were handed to the client with seq 1..Sent; <c>Acked</c> completed (PUBACK/PUBCOMP, or
/// written for QoS 0); <c>Failed</c> did not (dropped, refused, or still unacknowledged at the end).
/// </summary>
internal sealed record DeviceSummary(
    string DeviceId,
    string Kind,
    string Unit,
    long Sent,
    long Acked,
    long Failed,
    long LastSeq,
    long Reconnects,
    long Resent,
    string? ConnectError,
    IReadOnlyList<AnomalyRecord> Anomalies);
