using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.Runtime.Persistence;

/// <summary>A piece of persistent state the activation reads before OnActivateAsync.</summary>
internal interface IPersistentStateLoader
{
    Task ReadStateAsync(CancellationToken cancellationToken);
}

internal static class PersistentStateFactory
{
    public static IPersistentStateLoader Create(Type stateType, PersistentStateAttribute attribute, GrainId grainId, IServiceProvider services)
    {
        var storageName = attribute.StorageName ?? IGrainStorage.DefaultName;
        var storage = services.GetKeyedService<IGrainStorage>(storageName)
            ?? throw new InvalidOperationException(
                $"Grain {grainId} needs grain storage '{storageName}' for state '{attribute.StateName}', but none is registered: " +
                $"call silo.AddSqliteGrainStorage(\"{storageName}\") or silo.AddMemoryGrainStorage(\"{storageName}\").");
        return (IPersistentStateLoader)Activator.CreateInstance(typeof(PersistentState<>).MakeGenericType(stateType), attribute.StateName, grainId, storage)!;
    }
}

/// <summary>The <see cref="IPersistentState{TState}"/> injected into grains, backed by a named <see cref="IGrainStorage"/>.</summary>
internal sealed class PersistentState<TState>(string stateName, GrainId grainId, IGrainStorage storage)
    : IPersistentState<TState>, IGrainState<TState>, IPersistentStateLoader
{
    public TState State { get; set; } = CreateDefault();

    public string? Etag => ETag;

    public string? ETag { get; set; }

    public bool RecordExists { get; set; }

    Task IPersistentStateLoader.ReadStateAsync(CancellationToken cancellationToken) => ReadStateAsync(cancellationToken);

    public async Task ReadStateAsync(CancellationToken cancellationToken = default)
    {
        await storage.ReadStateAsync(stateName, grainId, this, cancellationToken);
        State ??= CreateDefault();
    }

    public Task WriteStateAsync(CancellationToken cancellationToken = default) =>
        storage.WriteStateAsync(stateName, grainId, this, cancellationToken);

    public async Task ClearStateAsync(CancellationToken cancellationToken = default)
    {
        await storage.ClearStateAsync(stateName, grainId, this, cancellationToken);
        State = CreateDefault();
    }

    internal static TState CreateDefault() =>
        typeof(TState).IsValueType || typeof(TState).GetConstructor(Type.EmptyTypes) is not null
            ? Activator.CreateInstance<TState>()
            : default!;
}
