namespace CloudEdge.Runtime;

/// <summary>
/// A grain's persisted state, injected into the grain's constructor with
/// <see cref="PersistentStateAttribute"/>. It is read before <see cref="Grain.OnActivateAsync"/>.
/// </summary>
public interface IPersistentState<TState>
{
    /// <summary>The state. A new instance of <typeparamref name="TState"/> when no record exists.</summary>
    TState State { get; set; }

    /// <summary>The version of the record last read or written; null when no record exists.</summary>
    string? Etag { get; }

    bool RecordExists { get; }

    Task ReadStateAsync(CancellationToken cancellationToken = default);

    /// <summary>Writes the state. Throws <see cref="InconsistentStateException"/> when the record changed since it was read.</summary>
    Task WriteStateAsync(CancellationToken cancellationToken = default);

    /// <summary>Deletes the record and resets <see cref="State"/>.</summary>
    Task ClearStateAsync(CancellationToken cancellationToken = default);
}

/// <summary>Injects an <see cref="IPersistentState{TState}"/> into a grain constructor parameter.</summary>
/// <param name="stateName">The name of this piece of state; a grain can have several.</param>
/// <param name="storageName">The grain storage provider to use; the default provider when null.</param>
[AttributeUsage(AttributeTargets.Parameter)]
public sealed class PersistentStateAttribute(string stateName, string? storageName = null) : Attribute
{
    public string StateName { get; } = stateName;

    public string? StorageName { get; } = storageName;
}

/// <summary>The state record that a storage provider reads and writes.</summary>
public interface IGrainState<TState>
{
    TState State { get; set; }

    string? ETag { get; set; }

    bool RecordExists { get; set; }
}

/// <summary>
/// A grain storage provider. Implementations use optimistic concurrency: a write or clear whose
/// <see cref="IGrainState{TState}.ETag"/> is not the stored one throws <see cref="InconsistentStateException"/>.
/// Register providers by name as keyed services; <see cref="DefaultName"/> is used when a grain names none.
/// </summary>
public interface IGrainStorage
{
    public const string DefaultName = "Default";

    Task ReadStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState, CancellationToken cancellationToken);

    Task WriteStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState, CancellationToken cancellationToken);

    Task ClearStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState, CancellationToken cancellationToken);
}
