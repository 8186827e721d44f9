using System.Globalization;

namespace CloudEdge.Runtime;

/// <summary>Identity helpers for grains and grain references.</summary>
public static class GrainExtensions
{
    public static GrainId GetGrainId(this IAddressable grain) => grain switch
    {
        IGrainIdentity identity => identity.GrainId,
        null => throw new ArgumentNullException(nameof(grain)),
        _ => throw new ArgumentException($"{grain.GetType().Name} is neither a grain nor a grain reference.", nameof(grain)),
    };

    public static string GetPrimaryKeyString(this IAddressable grain) => grain.GetGrainId().Key;

    public static Guid GetPrimaryKey(this IAddressable grain) => Guid.ParseExact(grain.GetGrainId().Key, "N");

    public static long GetPrimaryKeyLong(this IAddressable grain) => long.Parse(grain.GetGrainId().Key, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);

    /// <summary>A reference to this grain that can be passed to other grains or stored.</summary>
    public static TGrainInterface AsReference<TGrainInterface>(this Grain grain)
        where TGrainInterface : IGrain =>
        grain.GrainContext.GrainFactory.GetGrain<TGrainInterface>(grain.GrainContext.GrainId);
}
