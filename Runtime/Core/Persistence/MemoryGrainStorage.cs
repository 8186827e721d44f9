using System.Globalization;
using CloudEdge.Runtime.Serialization;

namespace CloudEdge.Runtime.Persistence;

/// <summary>
/// Grain storage in process memory: for tests and development. Records are kept serialized, like a
/// database would, so grains never share state objects and version tolerance behaves the same.
/// </summary>
internal sealed class MemoryGrainStorage(string name, GrainJson json) : IGrainStorage
{
    private readonly Dictionary<(string State, GrainId Grain), (long Version, string Payload)> records = [];
    private readonly Lock gate = new();
    private long lastVersion;

    public string Name => name;

    public Task ReadStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState, CancellationToken cancellationToken)
    {
        (long Version, string Payload) record;
        bool found;
        lock (gate)
        {
            found = records.TryGetValue((stateName, grainId), out record);
        }

        if (found)
        {
            grainState.State = json.Deserialize<TState>(record.Payload) ?? PersistentState<TState>.CreateDefault();
            grainState.ETag = record.Version.ToString(CultureInfo.InvariantCulture);
            grainState.RecordExists = true;
        }
        else
        {
            grainState.State = PersistentState<TState>.CreateDefault();
            grainState.ETag = null;
            grainState.RecordExists = false;
        }

        return Task.CompletedTask;
    }

    public Task WriteStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState, CancellationToken cancellationToken)
    {
        var payload = json.Serialize(grainState.State);
        long version;
        lock (gate)
        {
            var stored = records.TryGetValue((stateName, grainId), out var record) ? record.Version.ToString(CultureInfo.InvariantCulture) : null;
            if (stored != grainState.ETag)
            {
                throw new InconsistentStateException($"Write of state '{stateName}' of {grainId} to storage '{name}' lost a race with another writer.", stored, grainState.ETag);
            }

            // One counter for the whole store, so a record deleted and written again never reuses an ETag.
            version = ++lastVersion;
            records[(stateName, grainId)] = (version, payload);
        }

        grainState.ETag = version.ToString(CultureInfo.InvariantCulture);
        grainState.RecordExists = true;
        return Task.CompletedTask;
    }

    public Task ClearStateAsync<TState>(string stateName, GrainId grainId, IGrainState<TState> grainState, CancellationToken cancellationToken)
    {
        lock (gate)
        {
            var stored = records.TryGetValue((stateName, grainId), out var record) ? record.Version.ToString(CultureInfo.InvariantCulture) : null;
            if (stored != grainState.ETag)
            {
                throw new InconsistentStateException($"Clear of state '{stateName}' of {grainId} in storage '{name}' lost a race with another writer.", stored, grainState.ETag);
            }

            records.Remove((stateName, grainId));
        }

        grainState.ETag = null;
        grainState.RecordExists = false;
        return Task.CompletedTask;
    }
}
