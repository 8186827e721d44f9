using CloudEdge.Runtime;

namespace CloudEdge.Grains;

/// <summary>
/// The ids of every registered user, in registration order, for administrators' listings. One
/// activation (key <see cref="Key"/>) holds them all: registrations are rare next to reads, and each
/// write rewrites the list, so this suits thousands of users, not millions.
/// </summary>
public interface IUserDirectoryGrain : IGrainWithStringKey
{
    public const string Key = "all";

    /// <summary>Adds a user id; adding twice is a no-op.</summary>
    Task Add(string userId);

    [ReadOnly]
    Task<UserIdPage> List(int offset, int limit);
}

[Immutable]
public sealed record UserIdPage(IReadOnlyList<string> UserIds, int Total);

public sealed class UserDirectoryState
{
    public List<string> UserIds { get; set; } = [];
}

public sealed class UserDirectoryGrain([PersistentState("users")] IPersistentState<UserDirectoryState> state) : Grain, IUserDirectoryGrain
{
    private HashSet<string> known = new(StringComparer.Ordinal);

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        known = new HashSet<string>(state.State.UserIds, StringComparer.Ordinal);
        return Task.CompletedTask;
    }

    public async Task Add(string userId)
    {
        Identifiers.EnsureId(userId, "userId");
        if (!known.Add(userId))
        {
            return;
        }

        state.State.UserIds.Add(userId);
        try
        {
            await state.WriteOrReloadAsync();
        }
        catch
        {
            known = new HashSet<string>(state.State.UserIds, StringComparer.Ordinal);
            throw;
        }
    }

    public Task<UserIdPage> List(int offset, int limit)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var ids = state.State.UserIds;
        return Task.FromResult(new UserIdPage([.. ids.Skip(offset).Take(limit)], ids.Count));
    }
}
