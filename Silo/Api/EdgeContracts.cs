using System.Text.Json;
using System.Text.Json.Serialization;
using CloudEdge.Grains;

namespace CloudEdge.Silo.Api;

// Uplink (docs/uplink.md). Fields are nullable so that a missing one rejects the item with a code.

public sealed record UplinkRequest(IReadOnlyList<UplinkItemRequest>? Items);

public sealed record UplinkItemRequest(
    string? Id,
    string? Type,
    string? DeviceId,
    long? Seq,
    string? Traceparent,
    UplinkSummaryRequest? Summary,
    UplinkAlertRequest? Alert,
    UplinkDropsRequest? Drops);

public sealed record UplinkSummaryRequest(
    DateTimeOffset? WindowStart,
    DateTimeOffset? WindowEnd,
    string? Kind,
    long? Count,
    double? Min,
    double? Max,
    double? Mean,
    double? Stddev,
    double? MaxScore,
    long? AnomalyCount,
    string? ModelVersion,
    IReadOnlyList<string>? Links);

public sealed record UplinkAlertRequest(
    DateTimeOffset? At,
    string? Kind,
    double? Value,
    double? Score,
    double? Threshold,
    string? ModelVersion,
    long? ReadingSeq);

public sealed record UplinkDropsRequest(long? Summaries, long? Alerts, long? Readings, string? Reason);

/// <summary>One result per item, in batch order. <c>status</c>: applied, duplicate or rejected (with a code).</summary>
public sealed record UplinkItemResult(
    string? Id,
    string Status,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Code);

public sealed record UplinkResponse(IReadOnlyList<UplinkItemResult> Results);

// OTA: desired and reported model of a gateway.

public sealed record ModelSelection(string? Name, string? Version);

public sealed record SetDesiredRequest(ModelSelection? Model, long? ExpectedVersion);

/// <summary>A desired model with where to fetch its bytes (<c>blob</c>, a path under /api/v1).</summary>
public sealed record DesiredModelResponse(string Name, string Version, string Sha256, long Size, string Blob);

public sealed record DesiredResponse(long Version, DesiredModelResponse? Model, DateTimeOffset? UpdatedAt)
{
    public static DesiredResponse From(GatewayDesired desired) => new(
        desired.Version,
        desired.Model is { } m ? new DesiredModelResponse(m.Name, m.Version, m.Sha256, m.Size, ModelResponse.BlobPath(m.Sha256)) : null,
        desired.UpdatedAt);
}

public sealed record ReportedModelRequest(string? Name, string? Version, string? Status, string? Error);

public sealed record SetReportedRequest(ReportedModelRequest? Model);

public sealed record ReportedModelResponse(
    string Name,
    string Version,
    string Status,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Error);

public sealed record ReportedResponse(long Version, ReportedModelResponse? Model, DateTimeOffset? UpdatedAt)
{
    public static ReportedResponse From(GatewayReported reported) => new(
        reported.Version,
        reported.Model is { } m ? new ReportedModelResponse(m.Name, m.Version, EdgeText.Status(m.Status), m.Error) : null,
        reported.UpdatedAt);
}

public sealed record GatewayResponse(
    string GatewayId,
    IReadOnlyList<string> Devices,
    GatewayHealth Health,
    DesiredResponse Desired,
    ReportedResponse Reported)
{
    public static GatewayResponse From(GatewayView view) =>
        new(view.GatewayId, view.DeviceIds, view.Health, DesiredResponse.From(view.Desired), ReportedResponse.From(view.Reported));
}

// Model registry.

public sealed record ModelResponse(string Name, string Version, string Sha256, long Size, DateTimeOffset RegisteredAt, string Blob, JsonElement Manifest)
{
    public static string BlobPath(string sha256) => $"/api/v1/models/blobs/{sha256}";

    public static ModelResponse From(ModelView view)
    {
        using var manifest = JsonDocument.Parse(view.ManifestJson);
        return new ModelResponse(view.Name, view.Version, view.Sha256, view.Size, view.RegisteredAt, BlobPath(view.Sha256), manifest.RootElement.Clone());
    }
}

/// <summary>The lower-case words of the edge contract for statuses.</summary>
internal static class EdgeText
{
    public static string Status(UplinkStatus status) => status switch
    {
        UplinkStatus.Applied => "applied",
        UplinkStatus.Duplicate => "duplicate",
        _ => "rejected",
    };

    public static string Status(ModelStatus status) => status switch
    {
        ModelStatus.Downloading => "downloading",
        ModelStatus.Loading => "loading",
        ModelStatus.Running => "running",
        _ => "failed",
    };

    public static ModelStatus? ParseModelStatus(string? text) => text switch
    {
        "downloading" => ModelStatus.Downloading,
        "loading" => ModelStatus.Loading,
        "running" => ModelStatus.Running,
        "failed" => ModelStatus.Failed,
        _ => null,
    };
}
