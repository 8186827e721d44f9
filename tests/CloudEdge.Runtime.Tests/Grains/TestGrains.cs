using System.Collections.Concurrent;

namespace CloudEdge.Runtime.Tests.Grains;

/// <summary>Records every turn's start and end so tests can prove turns never overlap.</summary>
public sealed class TurnLog
{
    private int inside;

    public int MaxConcurrent { get; private set; }

    public ConcurrentQueue<string> Events { get; } = new();

    public void Enter(string what)
    {
        var now = Interlocked.Increment(ref inside);
        lock (this)
        {
            MaxConcurrent = Math.Max(MaxConcurrent, now);
        }

        Events.Enqueue("enter " + what);
    }

    public void Exit(string what)
    {
        Events.Enqueue("exit " + what);
        Interlocked.Decrement(ref inside);
    }
}

/// <summary>Per-grain logs shared with tests (grains are created by the runtime, so tests find them by key).</summary>
public static class TurnLogs
{
    private static readonly ConcurrentDictionary<string, TurnLog> Logs = new();

    public static TurnLog For(string key) => Logs.GetOrAdd(key, _ => new TurnLog());
}

public sealed class Payload
{
    public int Number { get; set; }

    public List<string> Items { get; set; } = [];
}

[Immutable]
public sealed class FrozenPayload
{
    public List<string> Items { get; set; } = [];
}

public interface ICounterGrain : IGrainWithStringKey
{
    Task<int> Add(int amount);

    Task<int> Get();

    Task Deactivate();
}

public sealed class CounterState
{
    public int Value { get; set; }
}

public sealed class CounterGrain([PersistentState("counter")] IPersistentState<CounterState> state) : Grain, ICounterGrain
{
    public static readonly ConcurrentQueue<string> Lifecycle = new();

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        Lifecycle.Enqueue($"activate {GrainId} {state.State.Value}");
        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        await state.WriteStateAsync(cancellationToken);
        Lifecycle.Enqueue($"deactivate {GrainId} {reason.ReasonCode}");
    }

    public async Task<int> Add(int amount)
    {
        state.State.Value += amount;
        await state.WriteStateAsync();
        return state.State.Value;
    }

    public Task<int> Get() => Task.FromResult(state.State.Value);

    public Task Deactivate()
    {
        DeactivateOnIdle();
        return Task.CompletedTask;
    }
}

public interface ITurnGrain : IGrainWithStringKey
{
    Task Work(string name, int delayMs);

    [AlwaysInterleave]
    Task Interleaving(string name, int delayMs);

    [ReadOnly]
    Task Read(string name, int delayMs);

    [OneWay]
    Task Fire(string name, int delayMs);

    Task<int> TurnsSeen();

    Task Block(string gate);

    [ReadOnly]
    Task ReadBlock(string gate);
}

public static class Gates
{
    private static readonly ConcurrentDictionary<string, TaskCompletionSource> All = new();

    public static TaskCompletionSource For(string name) => All.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
}

public class TurnGrain : Grain, ITurnGrain
{
    private int turns;

    protected TurnLog Log => TurnLogs.For(GrainId.Key);

    public async Task Work(string name, int delayMs)
    {
        await Step(name, delayMs);
    }

    public Task Interleaving(string name, int delayMs) => Step(name, delayMs);

    public Task Read(string name, int delayMs) => Step(name, delayMs);

    public Task Fire(string name, int delayMs) => Step(name, delayMs);

    public Task<int> TurnsSeen() => Task.FromResult(turns);

    public async Task Block(string gate)
    {
        Log.Enter("block");
        Log.Exit("block");
        await Gates.For(gate).Task;
        Log.Enter("unblocked");
        Log.Exit("unblocked");
    }

    public Task ReadBlock(string gate) => Block(gate);

    private async Task Step(string name, int delayMs)
    {
        // A turn is the code between awaits: log around each synchronous slice.
        Log.Enter(name + ":1");
        turns++;
        Thread.SpinWait(2000);
        Log.Exit(name + ":1");
        await Task.Delay(delayMs);
        Log.Enter(name + ":2");
        Thread.SpinWait(2000);
        Log.Exit(name + ":2");
    }
}

public interface IReentrantTurnGrain : ITurnGrain;

[Reentrant]
public sealed class ReentrantTurnGrain : TurnGrain, IReentrantTurnGrain;

public interface IEchoGrain : IGrainWithStringKey
{
    Task<Payload> Mutate(Payload payload);

    Task<bool> KeepAndCompare(FrozenPayload payload);

    Task<int> ItemsInKept();

    Task<bool> KeepUncopied([Immutable] Payload payload);

    Task<Immutable<Payload>> EchoImmutable(Immutable<Payload> payload);

    Task<string> Throw(string message);

    Task<int> Hang();

    Task<string> WhoAmI();

    Task<string?> ReadContext(string key);

    ValueTask<int> Twice(int value);
}

public sealed class EchoGrain : Grain, IEchoGrain
{
    public static readonly ConcurrentDictionary<string, FrozenPayload> Received = new();

    private FrozenPayload? kept;

    public Task<Payload> Mutate(Payload payload)
    {
        payload.Number++;
        payload.Items.Add("grain");
        return Task.FromResult(payload);
    }

    public Task<bool> KeepAndCompare(FrozenPayload payload)
    {
        kept = payload;
        Received[GrainId.Key] = payload;
        return Task.FromResult(true);
    }

    public Task<int> ItemsInKept() => Task.FromResult(kept?.Items.Count ?? -1);

    public static readonly ConcurrentDictionary<string, Payload> ReceivedPayloads = new();

    public Task<bool> KeepUncopied(Payload payload)
    {
        ReceivedPayloads[GrainId.Key] = payload;
        return Task.FromResult(true);
    }

    public Task<Immutable<Payload>> EchoImmutable(Immutable<Payload> payload) => Task.FromResult(payload);

    public Task<string> Throw(string message) => throw new InvalidOperationException(message);

    public async Task<int> Hang()
    {
        await Task.Delay(Timeout.Infinite);
        return 0;
    }

    public Task<string> WhoAmI() => Task.FromResult(this.GetPrimaryKeyString());

    public Task<string?> ReadContext(string key) => Task.FromResult(RequestContext.Get(key) as string);

    public ValueTask<int> Twice(int value) => ValueTask.FromResult(value * 2);
}

public interface IPingGrain : IGrainWithStringKey
{
    Task<string> Ping(string other, int depth);

    Task<string> Pong();
}

/// <summary>Non-reentrant: a -> b -> a deadlocks (and is detected).</summary>
public sealed class PingGrain : Grain, IPingGrain
{
    public async Task<string> Ping(string other, int depth) =>
        depth == 0 ? GrainId.Key : await GrainFactory.GetGrain<IPingGrain>(other).Ping(GrainId.Key, depth - 1);

    public Task<string> Pong() => Task.FromResult("pong");
}

public interface IReentrantPingGrain : IGrainWithStringKey
{
    Task<string> Ping(string other, int depth);
}

[Reentrant]
public sealed class ReentrantPingGrain : Grain, IReentrantPingGrain
{
    public async Task<string> Ping(string other, int depth) =>
        depth == 0 ? GrainId.Key : await GrainFactory.GetGrain<IReentrantPingGrain>(other).Ping(GrainId.Key, depth - 1);
}

public interface IAddressBookGrain : IGrainWithIntegerKey
{
    Task Remember(ICounterGrain counter);

    Task<int> AddThroughRemembered(int amount);

    Task<string?> RememberedId();
}

public sealed class AddressBookState
{
    public ICounterGrain? Counter { get; set; }
}

public sealed class AddressBookGrain([PersistentState("book")] IPersistentState<AddressBookState> state) : Grain, IAddressBookGrain
{
    public async Task Remember(ICounterGrain counter)
    {
        state.State.Counter = counter;
        await state.WriteStateAsync();
    }

    public Task<int> AddThroughRemembered(int amount) => state.State.Counter!.Add(amount);

    public Task<string?> RememberedId() => Task.FromResult(state.State.Counter?.GetGrainId().ToString());
}

public interface ITimerGrain : IGrainWithGuidKey
{
    Task Start(TimeSpan period, bool interleave);

    Task<int> Ticks();

    Task StopTimer();

    Task Block(string gate);
}

public sealed class TimerGrain : Grain, ITimerGrain
{
    private IGrainTimer? timer;
    private int ticks;

    public Task Start(TimeSpan period, bool interleave)
    {
        timer = RegisterGrainTimer(async _ =>
        {
            var log = TurnLogs.For("timer-" + GrainId.Key);
            log.Enter("tick");
            ticks++;
            log.Exit("tick");
            await Task.Yield();
        }, new GrainTimerCreationOptions(period, period) { Interleave = interleave });
        return Task.CompletedTask;
    }

    public Task<int> Ticks() => Task.FromResult(ticks);

    public Task StopTimer()
    {
        timer?.Dispose();
        return Task.CompletedTask;
    }

    public Task Block(string gate) => Gates.For(gate).Task;
}

public interface IReminderGrain : IGrainWithStringKey, IRemindable
{
    Task Register(TimeSpan due, TimeSpan period);
}

public sealed class ReminderGrain : Grain, IReminderGrain
{
    public static readonly ConcurrentQueue<string> Fired = new();

    public Task Register(TimeSpan due, TimeSpan period) => RegisterOrUpdateReminder("wake", due, period);

    public Task ReceiveReminder(string reminderName, TickStatus status)
    {
        Fired.Enqueue($"{GrainId.Key}:{reminderName}:{status.CurrentTickTime:O}");
        return Task.CompletedTask;
    }
}

public interface ISlowGrain : IGrainWithStringKey
{
    Task<string> Slow(string gate);
}

public sealed class SlowGrain : Grain, ISlowGrain
{
    public static readonly ConcurrentQueue<string> Deactivated = new();

    public static readonly ConcurrentQueue<string> Started = new();

    public async Task<string> Slow(string gate)
    {
        Started.Enqueue(GrainId.Key);
        await Gates.For(gate).Task;
        return "done";
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        Deactivated.Enqueue($"{GrainId.Key}:{reason.ReasonCode}");
        return Task.CompletedTask;
    }
}

public sealed class GreetingService
{
    public string Greet(string name) => $"hello {name}";
}

public interface IGreeterGrain : IGrainWithStringKey
{
    Task<string> Greet();
}

[GrainType("hello")]
public sealed class GreeterGrain(GreetingService service, IGrainContext context) : Grain, IGreeterGrain
{
    public Task<string> Greet() => Task.FromResult(service.Greet(context.GrainId.ToString()));
}

/// <summary>A grain interface may carry static members (key builders, constants): they are not grain calls.</summary>
public interface IKeyedLookupGrain : IGrainWithStringKey
{
    static string KeyFor(string tenant, string name) => $"{tenant}:{name}";

    Task<string> Describe();
}

public sealed class KeyedLookupGrain : Grain, IKeyedLookupGrain
{
    public Task<string> Describe() => Task.FromResult(this.GetPrimaryKeyString());
}
