namespace CloudEdge.Grains;

/// <summary>The grain storage provider every grain's state lives in: the host registers one under <see cref="Name"/>.</summary>
public static class PlatformStorage
{
    public const string Name = "platform";
}
