using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using CloudEdge.Bench.Mqtt;
using CloudEdge.Mqtt;

// MQTT load generator: the same raw-socket clients (our codec) against our broker, a private mosquitto and
// MQTTnet's server, one after the other in the same run on loopback. Usage:
//   dotnet run -c Release --project bench/CloudEdge.Bench.Mqtt -- [--seconds 5] [--rounds 3] [--clients 100] [--idle 10000] [--only fan-in]
var seconds = ArgValue("--seconds", 5);
var clients = ArgValue("--clients", 100);
var idle = ArgValue("--idle", 10_000);
var only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault();
var rounds = ArgValue("--rounds", 3);
const int PayloadSize = 64;
const int QueueLimit = 100_000;

var scenarios = new (string Name, Func<int, int, Task<Result>> Run)[]
{
    ("fan-in QoS0", (port, s) => FanIn(port, MqttQualityOfService.AtMostOnce, s)),
    ("fan-in QoS1", (port, s) => FanIn(port, MqttQualityOfService.AtLeastOnce, s)),
    ("fan-out QoS0", (port, s) => FanOut(port, MqttQualityOfService.AtMostOnce, s)),
    ("fan-out QoS1", (port, s) => FanOut(port, MqttQualityOfService.AtLeastOnce, s)),
};
// Every round starts each broker afresh, in this order, so load from elsewhere on the machine hits all alike.
var brokers = new (string Name, Func<Task<BrokerProcess>> Start)[]
{
    ("cloudedge", () => BrokerProcess.StartOursAsync(QueueLimit)),
    ("mosquitto", () => BrokerProcess.StartMosquittoAsync(QueueLimit)),
    ("mqttnet", BrokerProcess.StartMqttnetAsync),
};

Console.WriteLine($"MQTT bench: {rounds} rounds of {seconds}s per scenario and broker, {clients} publishers (fan-in) / subscribers (fan-out), {PayloadSize}-byte payloads, {idle} idle connections, {Environment.ProcessorCount} cores, load average {LoadAverage()}");
// The bench process's own first minutes (JIT, tiering of the load generator) are not measured: one short
// unmeasured pass of every selected scenario against each broker comes first.
foreach (var (name, run) in scenarios)
{
    if (only is not null && !name.Contains(only, StringComparison.OrdinalIgnoreCase)) continue;
    foreach (var broker in brokers)
    {
        await using var warm = await broker.Start();
        await run(warm.Port, 1);
    }
}
Console.WriteLine($"  warm-up done (load {LoadAverage()})");

var rows = new List<string>();
foreach (var (name, run) in scenarios)
{
    if (only is not null && !name.Contains(only, StringComparison.OrdinalIgnoreCase)) continue;
    var runs = brokers.Select(_ => new List<Result>()).ToArray();
    for (var round = 0; round < rounds; round++)
    {
        // The order rotates each round so that no broker always runs first (or last) in a round.
        for (var k = 0; k < brokers.Length; k++)
        {
            var b = (round + k) % brokers.Length;
            await using var broker = await brokers[b].Start();
            runs[b].Add(await run(broker.Port, seconds));
        }
        Console.WriteLine($"  {name} round {round + 1} (load {LoadAverage()}): " + string.Join(", ", brokers.Select((b, i) => $"{b.Name} {runs[i][^1].PerSecond:N0} msg/s (p50 {runs[i][^1].P50:F1} ms)")));
    }
    var medians = runs.Select(Median).ToArray();
    // Ratios are medians of per-round ratios: a round's brokers ran back to back under similar load.
    var row = $"| {name} | {string.Join(" | ", medians.Select(m => m.PerSecond.ToString("N0")))} | {RoundRatio(runs[0], runs[1]):F2}x | {RoundRatio(runs[0], runs[2]):F2}x | {string.Join(" | ", medians.Select(m => $"{m.P50:F1} / {m.P99:F1}"))} |";
    Console.WriteLine(row);
    rows.Add(row);
}

string? idleRow = null;
if (idle > 0 && (only is null || "idle".Contains(only, StringComparison.OrdinalIgnoreCase)))
{
    var growth = new long[brokers.Length];
    for (var b = 0; b < brokers.Length; b++)
    {
        await using var broker = await brokers[b].Start();
        growth[b] = await Idle(broker);
    }
    idleRow = $"| {idle:N0} idle connections: RSS growth | {string.Join(" | ", growth.Select(g => $"{g / 1024.0 / 1024:N0} MB ({g / (double)idle / 1024:F1} KB/conn)"))} | {growth[1] / (double)growth[0]:F2}x | {growth[2] / (double)growth[0]:F2}x | | | |";
    Console.WriteLine(idleRow);
}

Console.WriteLine();
Console.WriteLine($"Load average at the end: {LoadAverage()}");
Console.WriteLine("| scenario | cloudedge msg/s | mosquitto msg/s | mqttnet msg/s | cloudedge / mosquitto | cloudedge / mqttnet | cloudedge p50 / p99 ms | mosquitto p50 / p99 ms | mqttnet p50 / p99 ms |");
Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
foreach (var row in rows) Console.WriteLine(row);
if (idleRow is not null) Console.WriteLine(idleRow);
return 0;

static string LoadAverage() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

static double RoundRatio(List<Result> ours, List<Result> other)
{
    var ratios = ours.Zip(other, (o, p) => o.PerSecond / Math.Max(p.PerSecond, 1e-9)).Order().ToArray();
    return ratios[ratios.Length / 2];
}

// Median by throughput; its latencies come from the same run.
static Result Median(List<Result> runs) => runs.OrderBy(r => r.PerSecond).ElementAt(runs.Count / 2);

int ArgValue(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out var v) ? v : fallback;
}

// N publishers -> 1 subscriber on "bench/in/#".
async Task<Result> FanIn(int port, MqttQualityOfService qos, int measuredSeconds)
{
    var subscriber = await Subscriber.StartAsync(port, "bench-sub", "bench/in/#", qos);
    var publishers = new List<BenchConnection>();
    for (var i = 0; i < clients; i++) publishers.Add(await BenchConnection.ConnectAsync(port, $"bench-pub-{i}"));
    var result = await Measure([subscriber], publishers.Select((p, i) => (Func<CancellationToken, Task>)(t => Publish(p, $"bench/in/{i}", qos, t))).ToArray(), measuredSeconds);
    foreach (var p in publishers) await p.DisposeAsync();
    await subscriber.DisposeAsync();
    return result;
}

// 1 publisher -> N subscribers on "bench/out".
async Task<Result> FanOut(int port, MqttQualityOfService qos, int measuredSeconds)
{
    var subscribers = new List<Subscriber>();
    for (var i = 0; i < clients; i++) subscribers.Add(await Subscriber.StartAsync(port, $"bench-sub-{i}", "bench/out", qos));
    await using var publisher = await BenchConnection.ConnectAsync(port, "bench-pub");
    var result = await Measure(subscribers, [t => Publish(publisher, "bench/out", qos, t)], measuredSeconds);
    foreach (var s in subscribers) await s.DisposeAsync();
    return result;
}

async Task<Result> Measure(IReadOnlyList<Subscriber> subscribers, Func<CancellationToken, Task>[] publishers, int measuredSeconds)
{
    using var stop = new CancellationTokenSource();
    var running = publishers.Select(p => Task.Run(() => p(stop.Token))).ToArray();
    await Task.Delay(TimeSpan.FromSeconds(1)); // warm-up, not measured
    foreach (var s in subscribers) s.StartMeasuring();
    var watch = Stopwatch.StartNew();
    await Task.Delay(TimeSpan.FromSeconds(measuredSeconds));
    var received = subscribers.Sum(s => s.StopMeasuring());
    var elapsed = watch.Elapsed.TotalSeconds;
    stop.Cancel();
    try
    {
        await Task.WhenAll(running);
    }
    catch (Exception e) when (e is OperationCanceledException or IOException)
    {
    }
    var latencies = subscribers.SelectMany(s => s.Latencies).ToArray();
    Array.Sort(latencies);
    double Percentile(double p) => latencies.Length == 0 ? double.NaN : latencies[(int)Math.Min(latencies.Length - 1, p * latencies.Length)] * 1000.0 / Stopwatch.Frequency;
    return new Result(received / elapsed, Percentile(0.50), Percentile(0.99));
}

// QoS 0: batches of 32 then a flush (TCP back-pressure paces the publisher). QoS 1: a window of 32 unacknowledged.
async Task Publish(BenchConnection connection, string topic, MqttQualityOfService qos, CancellationToken token)
{
    var payload = new byte[PayloadSize];
    var packet = new MqttPublishPacket { Topic = topic, QoS = qos, Payload = new ReadOnlySequence<byte>(payload) };
    var window = new SemaphoreSlim(32);
    var acks = qos == MqttQualityOfService.AtMostOnce ? Task.CompletedTask : connection.ReadLoopAsync(p =>
    {
        if (p is MqttPubAckPacket) window.Release();
        return ValueTask.CompletedTask;
    }, token);
    ushort id = 0;
    try
    {
        while (!token.IsCancellationRequested)
        {
            for (var i = 0; i < 32; i++)
            {
                if (qos > 0)
                {
                    await window.WaitAsync(token);
                    id = (ushort)(id % 65535 + 1);
                    packet.PacketId = id;
                }
                BinaryPrimitives.WriteInt64LittleEndian(payload, Stopwatch.GetTimestamp());
                MqttPacketWriter.Write(connection.Writer, packet, MqttProtocolVersion.V500);
            }
            await connection.Writer.FlushAsync(token);
        }
    }
    catch (OperationCanceledException)
    {
    }
    await acks;
}

async Task<long> Idle(BrokerProcess broker)
{
    GC.Collect();
    await Task.Delay(1000);
    var before = broker.ResidentBytes();
    var connections = new List<BenchConnection>(idle);
    for (var i = 0; i < idle; i += 100)
    {
        var batch = await Task.WhenAll(Enumerable.Range(i, Math.Min(100, idle - i)).Select(n => BenchConnection.ConnectAsync(broker.Port, $"idle-{n}")));
        connections.AddRange(batch);
    }
    await Task.Delay(2000);
    var after = broker.ResidentBytes();
    foreach (var c in connections) await c.DisposeAsync();
    return after - before;
}

internal readonly record struct Result(double PerSecond, double P50, double P99);

/// <summary>A subscriber that counts and timestamps messages; acknowledges QoS 1 with one flush per read.</summary>
internal sealed class Subscriber : IAsyncDisposable
{
    private readonly BenchConnection _connection;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly List<long> _latencies = new(1 << 20);
    private volatile bool _measuring;
    private long _count;

    private Subscriber(BenchConnection connection, bool acknowledge)
    {
        _connection = connection;
        _loop = Task.Run(() => RunAsync(acknowledge));
    }

    public IReadOnlyList<long> Latencies => _latencies;

    public static async Task<Subscriber> StartAsync(int port, string clientId, string filter, MqttQualityOfService qos)
    {
        var connection = await BenchConnection.ConnectAsync(port, clientId);
        await connection.SendAsync(new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttSubscription { TopicFilter = filter, QoS = qos }] });
        if (await connection.ReceiveAsync() is not MqttSubAckPacket { ReasonCodes: [var code] } || code.IsError()) throw new InvalidOperationException("SUBSCRIBE refused.");
        return new Subscriber(connection, qos > 0);
    }

    public void StartMeasuring()
    {
        Interlocked.Exchange(ref _count, 0);
        _measuring = true;
    }

    public long StopMeasuring()
    {
        _measuring = false;
        return Interlocked.Read(ref _count);
    }

    private async Task RunAsync(bool acknowledge)
    {
        var reader = _connection.Reader;
        var writer = _connection.Writer;
        var ack = new MqttPubAckPacket();
        var stamp = new byte[8];
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(_stop.Token);
                var buffer = result.Buffer;
                var acked = false;
                while (MqttPacketReader.TryRead(ref buffer, MqttProtocolVersion.V500, int.MaxValue, out var packet))
                {
                    if (packet is not MqttPublishPacket publish) continue;
                    if (_measuring)
                    {
                        publish.Payload.Slice(0, 8).CopyTo(stamp);
                        _latencies.Add(Stopwatch.GetTimestamp() - BinaryPrimitives.ReadInt64LittleEndian(stamp));
                        Interlocked.Increment(ref _count);
                    }
                    if (acknowledge && publish.QoS > 0)
                    {
                        ack.PacketId = publish.PacketId;
                        MqttPacketWriter.Write(writer, ack, MqttProtocolVersion.V500);
                        acked = true;
                    }
                }
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (acked) await writer.FlushAsync(_stop.Token);
                if (result.IsCompleted) return;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _loop;
        await _connection.DisposeAsync();
    }
}
