namespace CloudEdge.Grains;

[GenerateSerializer]
[Alias("cloudedge.UplinkStatus")]
public enum UplinkStatus
{
    /// <summary>Applied now.</summary>
    Applied = 0,

    /// <summary>Applied before (its seq is at or below the highest applied): acknowledged, not applied again.</summary>
    Duplicate = 1,

    /// <summary>Permanently refused; <see cref="UplinkOutcome.Code"/> says why.</summary>
    Rejected = 2,
}

/// <summary>What happened to one uplink item.</summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.UplinkOutcome")]
public sealed record UplinkOutcome(string ItemId, UplinkStatus Status, string? Code = null)
{
    public static UplinkOutcome Applied(string itemId) => new(itemId, UplinkStatus.Applied);

    public static UplinkOutcome Duplicate(string itemId) => new(itemId, UplinkStatus.Duplicate);

    public static UplinkOutcome Rejected(string itemId, string code) => new(itemId, UplinkStatus.Rejected, code);
}
