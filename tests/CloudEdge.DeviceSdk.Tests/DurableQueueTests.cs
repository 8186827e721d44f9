using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;

namespace CloudEdge.DeviceSdk.Tests;

/// <summary>The durable offline queue against mosquitto: restarts in process, its bounds, and a SIGKILLed simulator.</summary>
public sealed class DurableQueueTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cloudedge-durable-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>Every reading a subscriber received, in arrival order.</summary>
    private sealed class OrderedSink
    {
        private readonly ConcurrentQueue<SensorReading> _readings = new();

        public IReadOnlyList<SensorReading> Readings => _readings.ToArray();

        public ValueTask Handle(MqttMessage m, CancellationToken _)
        {
            _readings.Enqueue(TelemetryJson.Parse(m.Payload.Span).Reading);
            return ValueTask.CompletedTask;
        }

        public static async Task<(MqttClient Client, OrderedSink Sink)> SubscribeAsync(int port, string deviceId)
        {
            var sink = new OrderedSink();
            var client = new MqttClient(Options(port, "sink-" + Guid.NewGuid().ToString("N")[..8], durable: null));
            client.MessageHandler = sink.Handle;
            await client.ConnectAsync();
            await client.SubscribeAsync(TelemetryJson.TopicFor(deviceId), MqttQualityOfService.AtLeastOnce);
            return (client, sink);
        }
    }

    private static MqttClientOptions Options(int port, string clientId, MqttDurableQueueOptions? durable,
        MqttOfflineQueueOverflow overflow = MqttOfflineQueueOverflow.DropOldest) => new()
    {
        Host = "127.0.0.1",
        Tls = MqttTlsOptions.Disabled,
        Port = port,
        ClientId = clientId,
        KeepAlive = TimeSpan.FromSeconds(60),
        InboxCapacity = 10_000,
        Reconnect = new MqttReconnectOptions { InitialDelay = TimeSpan.FromSeconds(1), MaximumDelay = TimeSpan.FromSeconds(30) },
        OfflineQueueOverflow = overflow,
        DurableQueue = durable,
    };

    private MqttClientOptions DeviceOptions(int port, string deviceId, int maximumMessages = 100_000, long maximumBytes = 64 << 20,
        MqttOfflineQueueOverflow overflow = MqttOfflineQueueOverflow.DropOldest) =>
        Options(port, deviceId, new MqttDurableQueueOptions { Directory = _directory, MaximumMessages = maximumMessages, MaximumBytes = maximumBytes }, overflow);

    private static SensorReading Reading(string deviceId, long seq, DateTimeOffset ts) =>
        new(deviceId, SensorKinds.Temperature, 20 + seq % 7, "C", ts, seq);

    /// <summary>Connects through the proxy, then makes the broker unreachable and waits until the client noticed.</summary>
    private static async Task ConnectThenLoseTheBrokerAsync(MqttClient client, TcpProxy proxy, Func<Task>? whileOnline = null)
    {
        var offline = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Disconnected += (_, e) => offline.TrySetResult();
        await client.ConnectAsync();
        if (whileOnline is not null) await whileOnline();
        proxy.Refusing = true;
        proxy.ResetAll();
        await offline.Task.WaitAsync(Wait.Long);
    }

    private static void AssertExactlyOnceInOrder(IReadOnlyList<SensorReading> received, long last) =>
        Assert.Equal(Enumerable.Range(1, (int)last).Select(i => (long)i), received.Select(r => r.Sequence));

    [Fact]
    public async Task A_device_offline_for_an_hour_and_restarted_meanwhile_delivers_every_reading_once_in_order()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var proxy = new TcpProxy(broker.Port);
        const string device = "durable-hour";
        var (subscriber, sink) = await OrderedSink.SubscribeAsync(broker.Port, device);
        await using var _ = subscriber;
        var time = new ManualTimeProvider(new DateTimeOffset(2026, 3, 1, 8, 0, 0, TimeSpan.Zero), fireTimersOnThreadPool: true);
        var start = time.GetUtcNow();

        var first = new MqttClient(DeviceOptions(proxy.Port, device), time);
        // Five readings online; then the link dies and the broker stays unreachable: one reading every 10 s for an
        // hour goes to disk.
        await ConnectThenLoseTheBrokerAsync(first, proxy, async () =>
        {
            for (var seq = 1; seq <= 5; seq++) Assert.True((await first.PublishReadingAsync(device, Reading(device, seq, time.GetUtcNow()))).IsSuccess);
            await Wait.UntilAsync(() => sink.Readings.Count == 5, "the five online readings");
        });
        var waiting = new List<Task<MqttPublishResult>>();
        for (var seq = 6; seq <= 365; seq++)
        {
            time.Advance(TimeSpan.FromSeconds(10));
            waiting.Add(first.PublishReadingAsync(device, Reading(device, seq, time.GetUtcNow())));
        }
        Assert.Equal(TimeSpan.FromHours(1), time.GetUtcNow() - start);
        Assert.Equal(360, first.GetStatistics().Queued);

        // The process goes away while offline: the publishes' tasks fail, their rows stay.
        await first.DisposeAsync();
        foreach (var task in waiting) await Assert.ThrowsAsync<MqttClientException>(() => task);
        Assert.Equal(5, sink.Readings.Count);

        // A new process on the same directory: it knows where the numbering stopped and sends everything left.
        proxy.Refusing = false;
        await using var second = new MqttClient(DeviceOptions(proxy.Port, device));
        Assert.Equal(360, second.GetStatistics().Queued);
        Assert.Equal(365, second.LastQueuedSequence(device));
        await second.ConnectAsync();
        for (var seq = 366; seq <= 370; seq++) Assert.True((await second.PublishReadingAsync(device, Reading(device, seq, DateTimeOffset.UtcNow))).IsSuccess);
        await Wait.UntilAsync(() => sink.Readings.Count >= 370 && second.GetStatistics().Queued == 0, $"370 readings at the subscriber (have {sink.Readings.Count})");

        var received = sink.Readings;
        AssertExactlyOnceInOrder(received, 370);
        // The readings kept the time they were taken at, an hour's worth of them.
        Assert.Equal(start + TimeSpan.FromSeconds(10), received[5].Timestamp);
        Assert.Equal(start + TimeSpan.FromHours(1), received[364].Timestamp);
        Assert.Equal(0, second.GetStatistics().Failed);
    }

    [Theory]
    [InlineData(MqttOfflineQueueOverflow.DropOldest)]
    [InlineData(MqttOfflineQueueOverflow.RejectNew)]
    public async Task At_the_message_bound_the_policy_decides_counts_and_says_so_and_the_bound_holds_across_a_restart(MqttOfflineQueueOverflow policy)
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var proxy = new TcpProxy(broker.Port);
        var device = "durable-bound-" + policy;
        var (subscriber, sink) = await OrderedSink.SubscribeAsync(broker.Port, device);
        await using var _ = subscriber;

        var first = new MqttClient(DeviceOptions(proxy.Port, device, maximumMessages: 5, overflow: policy));
        await ConnectThenLoseTheBrokerAsync(first, proxy);

        var tasks = Enumerable.Range(1, 8).Select(seq => first.PublishReadingAsync(device, Reading(device, seq, DateTimeOffset.UtcNow))).ToList();
        var lost = policy == MqttOfflineQueueOverflow.DropOldest ? tasks[..3] : tasks[5..];
        foreach (var task in lost)
        {
            var dropped = await Assert.ThrowsAsync<MqttMessageDroppedException>(() => task);
            Assert.Equal(policy, dropped.Policy);
        }
        Assert.Equal((3L, 5), (first.GetStatistics().Dropped, first.GetStatistics().Queued));
        await first.DisposeAsync();

        proxy.Refusing = false;
        await using var second = new MqttClient(DeviceOptions(proxy.Port, device, maximumMessages: 5, overflow: policy));
        Assert.Equal(5, second.GetStatistics().Queued);
        await second.ConnectAsync();
        await Wait.UntilAsync(() => sink.Readings.Count >= 5 && second.GetStatistics().Queued == 0, "the five kept readings");
        long[] expected = policy == MqttOfflineQueueOverflow.DropOldest ? [4, 5, 6, 7, 8] : [1, 2, 3, 4, 5];
        Assert.Equal(expected, sink.Readings.Select(r => r.Sequence));
    }

    [Fact]
    public async Task The_byte_bound_refuses_what_would_not_fit_and_bad_options_are_named()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var proxy = new TcpProxy(broker.Port);
        const string device = "durable-bytes";
        var probe = TelemetryJson.Serialize(Reading(device, 1, DateTimeOffset.UtcNow));
        var size = TelemetryJson.TopicFor(device).Length + probe.Length;
        await using var client = new MqttClient(DeviceOptions(proxy.Port, device, maximumBytes: size * 3 + size / 2, overflow: MqttOfflineQueueOverflow.RejectNew));
        await ConnectThenLoseTheBrokerAsync(client, proxy);

        var tasks = Enumerable.Range(1, 4).Select(seq => client.PublishReadingAsync(device, Reading(device, seq, DateTimeOffset.UtcNow))).ToList();
        await Assert.ThrowsAsync<MqttMessageDroppedException>(() => tasks[3]);
        Assert.Equal(3, client.GetStatistics().Queued);

        var noDirectory = Assert.Throws<ArgumentException>(() => new MqttClient(Options(proxy.Port, "x", new MqttDurableQueueOptions { Directory = " " })));
        Assert.Contains("DurableQueue.Directory", noDirectory.Message);
        var noClientId = Assert.Throws<ArgumentException>(() => new MqttClient(Options(proxy.Port, "", new MqttDurableQueueOptions { Directory = _directory })));
        Assert.Equal("ClientId", noClientId.ParamName);
        var zero = Assert.Throws<ArgumentException>(() => new MqttClient(Options(proxy.Port, "x", new MqttDurableQueueOptions { Directory = _directory, MaximumMessages = 0 })));
        Assert.Contains("MaximumMessages", zero.Message);
    }

    [Fact]
    public async Task A_simulator_killed_with_SIGKILL_while_offline_delivers_every_seq_once_in_order_after_its_restart()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var proxy = new TcpProxy(broker.Port);
        const string device = "simdur-0001";
        var (subscriber, sink) = await OrderedSink.SubscribeAsync(broker.Port, device);
        await using var _ = subscriber;
        var queueDir = Path.Combine(_directory, "queue");
        string[] Arguments(long count) =>
        [
            Path.Combine(AppContext.BaseDirectory, "CloudEdge.Simulator.dll"), "--port", proxy.Port.ToString(), "--device-prefix", "simdur-",
            "--rate", "25", "--count", count.ToString(), "--qos", "1", "--progress", "none", "--anomaly-rate", "0", "--seed", "3",
            "--queue-dir", queueDir,
        ];

        using (var run = ExternalProcess.Start("dotnet", Arguments(100_000)))
        {
            await Wait.UntilAsync(() => sink.Readings.Count >= 40, $"40 readings online (have {sink.Readings.Count})");
            // The device's bytes stop reaching the broker, the broker's acknowledgements still reach the device: whatever
            // the broker has, the device knows it has. The rest piles up in the queue file.
            proxy.StallUpstream();
            var database = Path.Combine(queueDir, device + ".queue.db");
            await Wait.UntilAsync(() => Rows(database) >= 50, "50 readings waiting in the queue file");
            run.Kill();
            await run.WaitAsync();
        }
        proxy.ResetAll();
        proxy.Resume();
        var online = sink.Readings.Count;
        var (left, last) = (Rows(Path.Combine(queueDir, device + ".queue.db")), LastSequence(Path.Combine(queueDir, device + ".queue.db")));
        Assert.True(left >= 50, $"{left} rows left");
        Assert.Equal(last, online + left);

        // The restarted simulator sends what was left, then goes on from the next seq to the count.
        var final = last + 30;
        using (var again = ExternalProcess.Start("dotnet", Arguments(final)))
        {
            var result = await again.WaitAsync(TimeSpan.FromMinutes(2));
            Assert.True(result.ExitCode == 0, result.StdoutText + result.Stderr);
        }
        await Wait.UntilAsync(() => sink.Readings.Count >= final, $"{final} readings at the subscriber (have {sink.Readings.Count})");
        AssertExactlyOnceInOrder(sink.Readings, final);
        Assert.Equal(0, Rows(Path.Combine(queueDir, device + ".queue.db")));
    }

    private static long Rows(string database) => Scalar(database, "SELECT count(*) FROM publishes");

    private static long LastSequence(string database) => Scalar(database, "SELECT seq FROM sequences");

    private static long Scalar(string database, string sql)
    {
        if (!File.Exists(database)) return 0;
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar() is long value ? value : 0;
    }
}
