namespace CloudEdge.Grains;

/// <summary>The persisted state of <see cref="UserGrain"/>. Every property has a default, so older records still read.</summary>
public sealed class UserState
{
    public bool Registered { get; set; }

    public string Email { get; set; } = string.Empty;

    public string DisplayName { get; set; } = string.Empty;

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }

    public long Version { get; set; }

    public List<string> OrderIds { get; set; } = [];

    public List<string> DeviceIds { get; set; } = [];

    public CommandLog<UserView> Commands { get; set; } = new();
}
