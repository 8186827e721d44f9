using System.Text.Json;
using CloudEdge.Grains;

namespace CloudEdge.Silo.Api;

// Request bodies. Fields are nullable so that a missing field gets a named 400, not a default value.

public sealed record RegisterUserRequest(string? UserId, string? Email, string? DisplayName, string? RequestId);

public sealed record UpdateUserRequest(string? Email, string? DisplayName, long? ExpectedVersion, string? RequestId);

public sealed record OrderLineRequest(string? Sku, int Quantity, decimal UnitPrice);

public sealed record CreateOrderRequest(string? OrderId, string? UserId, IReadOnlyList<OrderLineRequest?>? Lines, string? RequestId);

public sealed record OrderCommandRequest(string? RequestId, long? ExpectedVersion, string? Reason);

public sealed record RegisterDeviceRequest(string? DeviceId, string? OwnerId, string? GatewayId, string? Kind, string? Model, string? RequestId);

/// <summary>Properties to merge: any JSON value sets a property, null removes it.</summary>
public sealed record UpdatePropertiesRequest(Dictionary<string, JsonElement>? Properties, long? ExpectedVersion, string? RequestId);

public sealed record SetConnectionRequest(bool? Online, DateTimeOffset? At, string? RequestId);

// Responses.

public sealed record Page<T>(IReadOnlyList<T> Items, int Total, int Offset, int Limit);

public sealed record PingResponse(string Status);

public sealed record DevicePropertiesResponse(long Version, IReadOnlyDictionary<string, JsonElement> Values, DateTimeOffset? UpdatedAt);

public sealed record DeviceResponse(
    string DeviceId,
    string OwnerId,
    string GatewayId,
    string Kind,
    string Model,
    DateTimeOffset RegisteredAt,
    DevicePropertiesResponse Desired,
    DevicePropertiesResponse Reported,
    DeviceConnection Connection,
    DateTimeOffset? LastSeen,
    DeviceSummary? LatestSummary,
    DeviceAlert? LatestAlert,
    AlertCounters Alerts,
    IReadOnlyDictionary<string, long> HighestSeq)
{
    public static DeviceResponse From(DeviceView view) => new(
        view.DeviceId,
        view.OwnerId,
        view.GatewayId,
        view.Kind,
        view.Model,
        view.RegisteredAt,
        From(view.Desired),
        From(view.Reported),
        view.Connection,
        view.LastSeen,
        view.LatestSummary,
        view.LatestAlert,
        view.Alerts,
        view.HighestSeq);

    private static DevicePropertiesResponse From(DeviceProperties properties)
    {
        var values = new Dictionary<string, JsonElement>(properties.Values.Count, StringComparer.Ordinal);
        foreach (var (name, json) in properties.Values)
        {
            using var document = JsonDocument.Parse(json);
            values[name] = document.RootElement.Clone();
        }

        return new DevicePropertiesResponse(properties.Version, values, properties.UpdatedAt);
    }
}

internal static class Paging
{
    public const int DefaultLimit = 50;

    public const int MaxLimit = 200;

    public static (int Offset, int Limit) Read(int? offset, int? limit)
    {
        var o = offset ?? 0;
        var l = limit ?? DefaultLimit;
        if (o < 0)
        {
            throw new InvalidInputException("invalid_offset", "offset", "'offset' must not be negative.");
        }

        if (l is < 1 or > MaxLimit)
        {
            throw new InvalidInputException("invalid_limit", "limit", $"'limit' must be between 1 and {MaxLimit}.");
        }

        return (o, l);
    }
}
