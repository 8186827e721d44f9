namespace CloudEdge.Grains;

/// <summary>The persisted state of <see cref="UserGrain"/>. Every property has a default, so older records still read.</summary>
[GenerateSerializer]
[Alias("cloudedge.UserState")]
public sealed class UserState
{
    [Id(0)]
    public bool Registered { get; set; }

    [Id(1)]
    public string Email { get; set; } = string.Empty;

    [Id(2)]
    public string DisplayName { get; set; } = string.Empty;

    [Id(3)]
    public DateTimeOffset CreatedAt { get; set; }

    [Id(4)]
    public DateTimeOffset UpdatedAt { get; set; }

    [Id(5)]
    public long Version { get; set; }

    [Id(6)]
    public List<string> OrderIds { get; set; } = [];

    [Id(7)]
    public List<string> DeviceIds { get; set; } = [];

    [Id(8)]
    public CommandLog<UserView> Commands { get; set; } = new();
}
