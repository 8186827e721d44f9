namespace CloudEdge.Grains;

internal static class PersistentStateExtensions
{
    /// <summary>
    /// Writes the state; when the write fails the in-memory state is read back from storage, so the
    /// activation never keeps a change that was not stored.
    /// </summary>
    public static async Task WriteOrReloadAsync<TState>(this IPersistentState<TState> state, CancellationToken cancellationToken = default)
    {
        try
        {
            await state.WriteStateAsync(cancellationToken);
        }
        catch
        {
            await state.ReadStateAsync(cancellationToken);
            throw;
        }
    }
}
