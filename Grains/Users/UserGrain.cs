namespace CloudEdge.Grains;

internal sealed class UserGrain : Grain, IUserGrain
{
    private readonly IPersistentState<UserState> state;
    private readonly TimeProvider time;

    public UserGrain([PersistentState("user", PlatformStorage.Name)] IPersistentState<UserState> state, TimeProvider time)
    {
        this.state = state;
        this.time = time;
    }

    private string UserId => this.GetPrimaryKeyString();

    private UserState S => state.State;

    public async Task<UserView> Register(RegisterUser command)
    {
        ArgumentNullException.ThrowIfNull(command);
        Identifiers.EnsureRequestId(command.RequestId);
        var email = UserProfileRules.NormalizeEmail(command.Email);
        var name = UserProfileRules.NormalizeDisplayName(command.DisplayName);
        var fingerprint = $"register\n{email}\n{name}";
        var directory = GrainFactory.GetGrain<IUserDirectoryGrain>(IUserDirectoryGrain.Key);
        if (S.Commands.TryGetResult(command.RequestId, fingerprint, out var earlier) && earlier is not null)
        {
            // The first attempt may have stored the user and failed before the directory recorded it.
            await directory.Add(UserId);
            return earlier;
        }

        if (S.Registered)
        {
            throw new DomainConflictException("user_exists", $"User '{UserId}' is already registered.");
        }

        var now = time.GetUtcNow();
        S.Registered = true;
        S.Email = email;
        S.DisplayName = name;
        S.CreatedAt = now;
        S.UpdatedAt = now;
        S.Version = 1;
        var view = View();
        S.Commands.Record(command.RequestId, fingerprint, view);
        await state.WriteOrReloadAsync();
        await directory.Add(UserId);
        return view;
    }

    public Task<UserView> Get() => Task.FromResult(View(EnsureRegistered()));

    public Task<bool> Exists() => Task.FromResult(S.Registered);

    public async Task<UserView> UpdateProfile(UpdateUserProfile command)
    {
        ArgumentNullException.ThrowIfNull(command);
        Identifiers.EnsureRequestId(command.RequestId);
        var email = command.Email is null ? null : UserProfileRules.NormalizeEmail(command.Email);
        var name = command.DisplayName is null ? null : UserProfileRules.NormalizeDisplayName(command.DisplayName);
        if (email is null && name is null)
        {
            throw new InvalidInputException("nothing_to_update", "body", "Give 'email', 'displayName' or both.");
        }

        var fingerprint = $"update\n{email}\n{name}\n{command.ExpectedVersion}";
        if (S.Commands.TryGetResult(command.RequestId, fingerprint, out var earlier) && earlier is not null)
        {
            return earlier;
        }

        EnsureRegistered();
        if (command.ExpectedVersion is { } expected && expected != S.Version)
        {
            throw new DomainConflictException("version_mismatch", $"User '{UserId}' is at version {S.Version}, not {expected}.");
        }

        S.Email = email ?? S.Email;
        S.DisplayName = name ?? S.DisplayName;
        S.UpdatedAt = time.GetUtcNow();
        S.Version++;
        var view = View();
        S.Commands.Record(command.RequestId, fingerprint, view);
        await state.WriteOrReloadAsync();
        return view;
    }

    public Task<IReadOnlyList<string>> GetOrderIds() => Task.FromResult<IReadOnlyList<string>>(EnsureRegistered().OrderIds.ToArray());

    public Task<IReadOnlyList<string>> GetDeviceIds() => Task.FromResult<IReadOnlyList<string>>(EnsureRegistered().DeviceIds.ToArray());

    public Task AttachOrder(string orderId) => Attach(S.OrderIds, orderId, "orderId");

    public Task AttachDevice(string deviceId) => Attach(S.DeviceIds, deviceId, "deviceId");

    private async Task Attach(List<string> ids, string id, string field)
    {
        Identifiers.EnsureId(id, field);
        EnsureRegistered();
        if (ids.Contains(id, StringComparer.Ordinal))
        {
            return;
        }

        ids.Add(id);
        await state.WriteOrReloadAsync();
    }

    private UserState EnsureRegistered() =>
        S.Registered ? S : throw new EntityNotFoundException("user_not_found", $"User '{UserId}' is not registered.");

    private UserView View() => View(S);

    private UserView View(UserState s) =>
        new(UserId, s.Email, s.DisplayName, s.CreatedAt, s.UpdatedAt, s.Version, s.OrderIds.Count, s.DeviceIds.Count);
}
