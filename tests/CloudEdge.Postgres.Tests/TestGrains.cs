using Orleans.Runtime;

namespace CloudEdge.Postgres.Tests;

public interface ICounterGrain : IGrainWithStringKey
{
    Task<int> AddAsync(int amount);

    Task<int> GetAsync();

    Task<string?> GetETagAsync();

    Task DeactivateAsync();
}

/// <summary>A counter whose value lives in the default (ADO.NET) grain storage and is written on every change.</summary>
public sealed class CounterGrain([PersistentState("counter")] IPersistentState<CounterState> state) : Grain, ICounterGrain
{
    public async Task<int> AddAsync(int amount)
    {
        state.State.Value += amount;
        await state.WriteStateAsync();
        return state.State.Value;
    }

    public Task<int> GetAsync() => Task.FromResult(state.State.Value);

    public Task<string?> GetETagAsync() => Task.FromResult(state.Etag);

    public Task DeactivateAsync()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }
}

[GenerateSerializer]
public sealed class CounterState
{
    [Id(0)]
    public int Value { get; set; }
}

public interface IReminderCountingGrain : IGrainWithStringKey
{
    Task StartAsync(string reminder, TimeSpan period);

    Task StopAsync(string reminder);

    Task<int> GetTicksAsync();

    Task<bool> IsRegisteredAsync(string reminder);
}

/// <summary>Counts its reminder ticks in grain storage, so the count survives deactivations and cluster restarts.</summary>
public sealed class ReminderCountingGrain([PersistentState("ticks")] IPersistentState<CounterState> ticks) : Grain, IReminderCountingGrain, IRemindable
{
    public async Task StartAsync(string reminder, TimeSpan period) =>
        await this.RegisterOrUpdateReminder(reminder, period, period);

    public async Task StopAsync(string reminder)
    {
        var registered = await this.GetReminder(reminder);
        if (registered is not null)
        {
            await this.UnregisterReminder(registered);
        }
    }

    public Task<int> GetTicksAsync() => Task.FromResult(ticks.State.Value);

    public async Task<bool> IsRegisteredAsync(string reminder) => await this.GetReminder(reminder) is not null;

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        ticks.State.Value++;
        await ticks.WriteStateAsync();
    }
}
