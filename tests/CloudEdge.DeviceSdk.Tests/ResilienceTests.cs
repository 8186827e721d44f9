using System.Collections.Concurrent;
using System.Text;

namespace CloudEdge.DeviceSdk.Tests;

public sealed class ResilienceTests
{
    private static MqttClientOptions Persistent(int port, string clientId, TimeSpan? keepAlive = null) => new()
    {
        Host = "127.0.0.1",
        Tls = MqttTlsOptions.Disabled,
        Port = port,
        ClientId = clientId,
        // mosquitto 2.0 persists only sessions that were opened with Clean Start 0.
        CleanStart = false,
        SessionExpiryInterval = 3600,
        KeepAlive = keepAlive ?? TimeSpan.FromSeconds(30),
        Reconnect = new MqttReconnectOptions { InitialDelay = TimeSpan.FromMilliseconds(100), MaximumDelay = TimeSpan.FromMilliseconds(800) },
    };

    [Fact]
    public async Task After_the_broker_is_killed_and_restarted_in_flight_QoS1_is_resent_and_the_offline_queue_drains_with_nothing_lost()
    {
        await using var broker = await Mosquitto.StartAsync(s => s.Persistence = true);
        var topic = $"reconnect/{Guid.NewGuid():N}";
        var received = new ConcurrentDictionary<int, int>();
        await using var subscriber = new MqttClient(Persistent(broker.Port, "sub-" + Guid.NewGuid().ToString("N")[..8]));
        subscriber.MessageHandler = (m, _) =>
        {
            received.AddOrUpdate(int.Parse(Encoding.UTF8.GetString(m.Payload.Span)), 1, (_, n) => n + 1);
            return ValueTask.CompletedTask;
        };
        await subscriber.ConnectAsync();
        await subscriber.SubscribeAsync(topic, MqttQualityOfService.AtLeastOnce);

        await using var device = new MqttClient(Persistent(broker.Port, "dev-" + Guid.NewGuid().ToString("N")[..8]));
        var disconnects = new ConcurrentQueue<MqttDisconnectedEventArgs>();
        var reconnected = new TaskCompletionSource<MqttConnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        device.Disconnected += (_, e) => disconnects.Enqueue(e);
        device.Connected += (_, e) => { if (e.IsReconnect) reconnected.TrySetResult(e); };
        await device.ConnectAsync();

        Task<MqttPublishResult> Publish(int i) => device.PublishAsync(topic, Encoding.UTF8.GetBytes(i.ToString()), MqttQualityOfService.AtLeastOnce);

        // 1-10 arrive normally.
        foreach (var i in Enumerable.Range(1, 10)) Assert.True((await Publish(i)).IsSuccess);
        await Wait.UntilAsync(() => received.Count == 10, "first ten messages");

        // Save both sessions, then freeze the broker: 11-20 are written to the socket and never acknowledged.
        await broker.SignalAsync("USR1");
        await Wait.UntilAsync(() => File.Exists(broker.DatabasePath), "mosquitto.db written");
        await broker.SignalAsync("STOP");
        var inFlight = Enumerable.Range(11, 10).Select(Publish).ToList();
        await Wait.UntilAsync(() => device.GetStatistics().InFlight == 10, "ten unacknowledged publishes");

        // Kill it: the device sees the connection drop; 21-40 go to the offline queue.
        await broker.KillAsync();
        await Wait.UntilAsync(() => !disconnects.IsEmpty, "Disconnected event");
        var queued = Enumerable.Range(21, 20).Select(Publish).ToList();
        // MQTTnet keeps no in-flight state across connections: the ten unacknowledged ones wait again, ahead of 21-40.
        Assert.Equal(30, device.GetStatistics().Queued);
        Assert.Equal(0, device.GetStatistics().InFlight);

        await broker.RestartAsync();
        var again = await reconnected.Task.WaitAsync(Wait.Long);
        Assert.True(again.Result.SessionPresent, broker.Log);

        var results = await Task.WhenAll(inFlight.Concat(queued)).WaitAsync(Wait.Long);
        Assert.All(results, r => Assert.True(r.IsSuccess));
        await Wait.UntilAsync(() => received.Count == 40, $"all 40 messages at the subscriber (have {received.Count})");
        Assert.Equal(Enumerable.Range(1, 40), received.Keys.Order());

        var disconnect = disconnects.First();
        Assert.Equal(MqttDisconnectReason.TransportClosed, disconnect.Reason);
        Assert.True(disconnect.WillReconnect);
        var stats = device.GetStatistics();
        Assert.Equal(10, stats.Resent);
        Assert.Equal(1, stats.Reconnects);
        Assert.Equal(40, stats.Completed);
        Assert.Equal(0, stats.Failed);
        Assert.Equal(0, stats.Queued);
    }

    [Fact]
    public async Task When_the_server_lost_the_session_in_flight_messages_are_published_again_and_subscriptions_restored()
    {
        await using var broker = await Mosquitto.StartAsync();
        var topic = $"lost/{Guid.NewGuid():N}";
        await using var device = new MqttClient(Persistent(broker.Port, "dev-" + Guid.NewGuid().ToString("N")[..8]));
        var received = new ConcurrentQueue<string>();
        device.MessageHandler = (m, _) => { received.Enqueue(Encoding.UTF8.GetString(m.Payload.Span)); return ValueTask.CompletedTask; };
        var reconnected = new TaskCompletionSource<MqttConnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        device.Connected += (_, e) => { if (e.IsReconnect) reconnected.TrySetResult(e); };
        await device.ConnectAsync();
        await device.SubscribeAsync(topic, MqttQualityOfService.AtLeastOnce);

        await broker.SignalAsync("STOP");
        var pending = device.PublishAsync(topic, "kept"u8.ToArray(), MqttQualityOfService.AtLeastOnce);
        await Wait.UntilAsync(() => device.GetStatistics().InFlight == 1, "one unacknowledged publish");
        await broker.KillAsync();
        await broker.RestartAsync();

        var again = await reconnected.Task.WaitAsync(Wait.Long);
        Assert.False(again.Result.SessionPresent);
        Assert.True((await pending.WaitAsync(Wait.Long)).IsSuccess);
        // The re-sent SUBSCRIBE went out before the re-published message, so the device receives its own message.
        await Wait.UntilAsync(() => received.Contains("kept"), "the re-published message, via the restored subscription");
    }

    [Theory]
    [InlineData(MqttOfflineQueueOverflow.DropOldest)]
    [InlineData(MqttOfflineQueueOverflow.RejectNew)]
    public async Task A_full_offline_queue_drops_by_policy_and_says_so(MqttOfflineQueueOverflow policy)
    {
        await using var broker = await Mosquitto.StartAsync();
        var topic = $"overflow/{Guid.NewGuid():N}";
        var options = new MqttClientOptions
        {
            Host = "127.0.0.1",
            Tls = MqttTlsOptions.Disabled,
            Port = broker.Port,
            ClientId = "dev-" + Guid.NewGuid().ToString("N")[..8],
            OfflineQueueCapacity = 5,
            OfflineQueueOverflow = policy,
            Reconnect = new MqttReconnectOptions { InitialDelay = TimeSpan.FromMilliseconds(100), MaximumDelay = TimeSpan.FromMilliseconds(500) },
        };
        await using var device = new MqttClient(options);
        long droppedByMeter = 0;
        using var meter = new System.Diagnostics.Metrics.MeterListener();
        meter.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == DeviceSdkTelemetry.Name && instrument.Name == "cloudedge.devicesdk.offline_queue.dropped") l.EnableMeasurementEvents(instrument);
        };
        meter.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "mqtt.client.id" && Equals(tag.Value, options.ClientId)) Interlocked.Add(ref droppedByMeter, value);
            }
        });
        meter.Start();
        var disconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        device.Disconnected += (_, _) => disconnected.TrySetResult();
        await device.ConnectAsync();
        await broker.KillAsync();
        await disconnected.Task.WaitAsync(Wait.Long);

        var tasks = Enumerable.Range(1, 8).Select(i => device.PublishAsync(topic, Encoding.UTF8.GetBytes(i.ToString()), MqttQualityOfService.AtLeastOnce)).ToList();
        var dropped = policy == MqttOfflineQueueOverflow.DropOldest ? tasks.Take(3).ToList() : tasks.Skip(5).ToList();
        foreach (var t in dropped)
        {
            var e = await Assert.ThrowsAsync<MqttMessageDroppedException>(() => t);
            Assert.Equal(policy, e.Policy);
        }
        Assert.Equal(3, device.GetStatistics().Dropped);
        Assert.Equal(3, Interlocked.Read(ref droppedByMeter));
        Assert.Equal(5, device.GetStatistics().Queued);

        await broker.RestartAsync();
        var kept = tasks.Except(dropped).ToList();
        Assert.All(await Task.WhenAll(kept).WaitAsync(Wait.Long), r => Assert.True(r.IsSuccess));
        var stats = device.GetStatistics();
        Assert.Equal((0, 5, 3, 3), (stats.Queued, stats.Completed, stats.Failed, stats.Dropped));
        Assert.Equal(policy == MqttOfflineQueueOverflow.DropOldest ? [4, 5, 6, 7, 8] : [1, 2, 3, 4, 5], kept.Select(t => tasks.IndexOf(t) + 1));
    }

    [Fact]
    public async Task A_half_open_connection_is_closed_at_one_and_a_half_keep_alives_on_the_clients_clock()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var proxy = new TcpProxy(broker.Port);
        var time = new ManualTimeProvider();
        var options = new MqttClientOptions
        {
            Host = "127.0.0.1",
            Tls = MqttTlsOptions.Disabled,
            Port = proxy.Port,
            ClientId = "halfopen-" + Guid.NewGuid().ToString("N")[..8],
            KeepAlive = TimeSpan.FromSeconds(8),
        };
        await using var device = new MqttClient(options, time);
        var disconnected = new TaskCompletionSource<MqttDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        device.Disconnected += (_, e) => disconnected.TrySetResult(e);
        await device.ConnectAsync();
        await Wait.UntilAsync(() => time.ActiveTimerCount == 1, "the keep-alive timer");

        proxy.Stall();
        // The keep-alive loop ticks every second (keep-alive / 8); 11 ticks of silence are tolerated.
        for (var second = 1; second <= 11; second++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            await Wait.UntilAsync(() => time.ActiveTimerCount == 1, $"the keep-alive timer re-armed after {second} s");
            Assert.True(device.IsConnected, $"still connected after {second} s");
        }
        time.Advance(TimeSpan.FromSeconds(1));

        var e = await disconnected.Task.WaitAsync(Wait.Long);
        Assert.Equal(MqttDisconnectReason.KeepAliveTimeout, e.Reason);
        Assert.Equal(MqttReasonCode.KeepAliveTimeout, e.ReasonCode);
        Assert.True(e.WillReconnect);
        Assert.False(device.IsConnected);
    }

    [Fact]
    public async Task A_half_open_connection_is_detected_in_real_time_and_the_client_reconnects()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var proxy = new TcpProxy(broker.Port);
        var options = new MqttClientOptions
        {
            Host = "127.0.0.1",
            Tls = MqttTlsOptions.Disabled,
            Port = proxy.Port,
            ClientId = "halfopen-" + Guid.NewGuid().ToString("N")[..8],
            KeepAlive = TimeSpan.FromSeconds(2),
            Reconnect = new MqttReconnectOptions { InitialDelay = TimeSpan.FromMilliseconds(100), MaximumDelay = TimeSpan.FromMilliseconds(500) },
        };
        await using var device = new MqttClient(options);
        var disconnected = new TaskCompletionSource<MqttDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        device.Disconnected += (_, e) => disconnected.TrySetResult(e);
        device.Connected += (_, e) => { if (e.IsReconnect) reconnected.TrySetResult(); };
        await device.ConnectAsync();

        proxy.Stall();
        var e = await disconnected.Task.WaitAsync(Wait.Long);
        Assert.Equal(MqttDisconnectReason.KeepAliveTimeout, e.Reason);

        proxy.Resume();
        await reconnected.Task.WaitAsync(Wait.Long);
        Assert.True((await device.PublishAsync("after/halfopen", "x"u8.ToArray(), MqttQualityOfService.AtLeastOnce)).IsSuccess);
    }

    [Fact]
    public async Task A_slow_message_handler_stalls_neither_keep_alive_nor_acknowledgements()
    {
        await using var broker = await Mosquitto.StartAsync();
        var topic = $"slow/{Guid.NewGuid():N}";
        var options = new MqttClientOptions
        {
            Host = "127.0.0.1",
            Tls = MqttTlsOptions.Disabled,
            Port = broker.Port,
            ClientId = "slow-" + Guid.NewGuid().ToString("N")[..8],
            KeepAlive = TimeSpan.FromSeconds(1),
        };
        await using var device = new MqttClient(options);
        var release = new SemaphoreSlim(0);
        var handled = new ConcurrentQueue<string>();
        device.MessageHandler = async (m, ct) =>
        {
            await release.WaitAsync(ct);
            handled.Enqueue(Encoding.UTF8.GetString(m.Payload.Span));
        };
        var disconnects = 0;
        device.Disconnected += (_, _) => Interlocked.Increment(ref disconnects);
        await device.ConnectAsync();
        await device.SubscribeAsync(topic, MqttQualityOfService.AtLeastOnce);

        await using var publisher = new MqttClient(Clients.Options(broker.Port));
        await publisher.ConnectAsync();
        foreach (var i in Enumerable.Range(1, 20)) await publisher.PublishAsync(topic, Encoding.UTF8.GetBytes(i.ToString()), MqttQualityOfService.AtLeastOnce);
        await Wait.UntilAsync(() => device.GetStatistics().Received == 20, "20 messages received (and acknowledged) while the handler is blocked");

        // Six keep-alive periods with the handler blocked: pings must keep flowing and acks keep coming.
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(6);
        var round = 0;
        while (DateTime.UtcNow < until)
        {
            var result = await device.PublishAsync($"{topic}/own", Encoding.UTF8.GetBytes($"own-{round++}"), MqttQualityOfService.AtLeastOnce).WaitAsync(Wait.Long);
            Assert.True(result.IsSuccess);
            await Task.Delay(500);
        }
        Assert.Equal(0, Volatile.Read(ref disconnects));
        Assert.True(device.IsConnected);
        Assert.Empty(handled);

        release.Release(20);
        await Wait.UntilAsync(() => handled.Count == 20, "all 20 handled once released");
        Assert.Equal(Enumerable.Range(1, 20).Select(i => i.ToString()), handled);
        Assert.Equal(0, Volatile.Read(ref disconnects));
    }

    [Fact]
    public async Task Cancelling_a_publish_that_waits_offline_removes_it_and_it_is_never_sent()
    {
        await using var broker = await Mosquitto.StartAsync();
        var topic = $"cancel/{Guid.NewGuid():N}";
        await using var device = new MqttClient(Persistent(broker.Port, "dev-" + Guid.NewGuid().ToString("N")[..8]));
        var received = new ConcurrentQueue<string>();
        device.MessageHandler = (m, _) => { received.Enqueue(Encoding.UTF8.GetString(m.Payload.Span)); return ValueTask.CompletedTask; };
        var disconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        device.Disconnected += (_, _) => disconnected.TrySetResult();
        await device.ConnectAsync();
        await device.SubscribeAsync(topic, MqttQualityOfService.AtLeastOnce);
        await broker.KillAsync();
        await disconnected.Task.WaitAsync(Wait.Long);

        using var cts = new CancellationTokenSource();
        var cancelled = device.PublishAsync(topic, "cancelled"u8.ToArray(), MqttQualityOfService.AtLeastOnce, cancellationToken: cts.Token);
        var kept = device.PublishAsync(topic, "kept"u8.ToArray(), MqttQualityOfService.AtLeastOnce);
        Assert.Equal(2, device.GetStatistics().Queued);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        Assert.Equal(1, device.GetStatistics().Queued);

        await broker.RestartAsync();
        Assert.True((await kept.WaitAsync(Wait.Long)).IsSuccess);
        await Wait.UntilAsync(() => received.Contains("kept"), "the kept message back through the restored subscription");
        Assert.DoesNotContain("cancelled", received);
    }

    [Fact]
    public async Task Connect_failures_say_why_nothing_listening_and_no_CONNACK_in_time()
    {
        await using (var nobody = new MqttClient(Clients.Options(Mosquitto.FreePort())))
        {
            var e = await Assert.ThrowsAsync<MqttConnectException>(() => nobody.ConnectAsync());
            Assert.IsType<System.Net.Sockets.SocketException>(e.InnerException);
            Assert.Null(e.ReasonCode);
        }
        await using var broker = await Mosquitto.StartAsync();
        await using var proxy = new TcpProxy(broker.Port);
        proxy.Stall();
        await using var silent = new MqttClient(new MqttClientOptions
        {
            Host = "127.0.0.1",
            Tls = MqttTlsOptions.Disabled,
            Port = proxy.Port,
            ClientId = "silent",
            ConnectTimeout = TimeSpan.FromSeconds(1),
        });
        var timeout = await Assert.ThrowsAsync<MqttConnectException>(() => silent.ConnectAsync());
        Assert.Contains("No CONNACK", timeout.Message);
        Assert.False(silent.IsConnected);

        using var cts = new CancellationTokenSource();
        await using var cancelled = new MqttClient(Clients.Options(proxy.Port));
        var pending = cancelled.ConnectAsync(cts.Token);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
    }

    [Fact]
    public void Backoff_grows_exponentially_with_equal_jitter_and_is_capped()
    {
        var low = new ReconnectBackoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5), () => 0.0);
        var high = new ReconnectBackoff(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(5), () => 1.0);
        Assert.Equal([50, 100, 200, 400, 800, 1600, 2500, 2500], Enumerable.Range(0, 8).Select(a => low.Delay(a).TotalMilliseconds));
        Assert.Equal([100, 200, 400, 800, 1600, 3200, 5000, 5000], Enumerable.Range(0, 8).Select(a => high.Delay(a).TotalMilliseconds));
        Assert.Equal(5000, high.Delay(int.MaxValue).TotalMilliseconds);
    }
}
