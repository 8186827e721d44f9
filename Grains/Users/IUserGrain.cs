namespace CloudEdge.Grains;

/// <summary>A user, keyed by user id (the JWT subject): profile plus the ids of their orders and devices.</summary>
[Alias("cloudedge.IUserGrain")]
public interface IUserGrain : IGrainWithStringKey
{
    /// <summary>Registers the user. A retry with the same request id returns the first result.</summary>
    Task<UserView> Register(RegisterUser command);

    /// <exception cref="EntityNotFoundException">The user is not registered.</exception>
    [ReadOnly]
    Task<UserView> Get();

    [ReadOnly]
    Task<bool> Exists();

    Task<UserView> UpdateProfile(UpdateUserProfile command);

    [ReadOnly]
    Task<IReadOnlyList<string>> GetOrderIds();

    [ReadOnly]
    Task<IReadOnlyList<string>> GetDeviceIds();

    /// <summary>Adds an order id to the user's orders (called by the order grain; adding twice is a no-op).</summary>
    Task AttachOrder(string orderId);

    /// <summary>Adds a device id to the user's devices (called by the device grain; adding twice is a no-op).</summary>
    Task AttachDevice(string deviceId);
}

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.RegisterUser")]
public sealed record RegisterUser(string RequestId, string Email, string DisplayName);

/// <summary>Changes the fields that are not null. With <see cref="ExpectedVersion"/>, a stale version is a conflict.</summary>
[GenerateSerializer]
[Immutable]
[Alias("cloudedge.UpdateUserProfile")]
public sealed record UpdateUserProfile(string RequestId, string? Email, string? DisplayName, long? ExpectedVersion = null);

[GenerateSerializer]
[Immutable]
[Alias("cloudedge.UserView")]
public sealed record UserView(
    string UserId,
    string Email,
    string DisplayName,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    long Version,
    int OrderCount,
    int DeviceCount);
