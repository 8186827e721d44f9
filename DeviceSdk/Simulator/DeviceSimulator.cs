using System.Security.Cryptography.X509Certificates;
using CloudEdge.DeviceSdk;

namespace CloudEdge.Simulator;

/// <summary>One simulated device: its own MQTT connection (client id = device id), one sensor, paced readings.</summary>
internal sealed class DeviceSimulator : IAsyncDisposable
{
    private readonly SimulatorSettings _settings;
    private readonly SensorModel _sensor;
    private readonly TimeProvider _time;
    private readonly MqttClient _client;
    private readonly SemaphoreSlim _outstanding;
    private readonly List<AnomalyRecord> _anomalies = [];
    private long _sent, _acked, _failed, _lastSeq;
    private int _pending;

    public DeviceSimulator(SimulatorSettings settings, int index, X509Certificate2? ca, X509Certificate2? clientCertificate, TimeProvider time)
    {
        _settings = settings;
        _time = time;
        DeviceId = settings.DeviceId(index);
        var kind = settings.Kinds[index % settings.Kinds.Count];
        _sensor = new SensorModel(kind, settings.AnomalyRate, HashCode.Combine(settings.Seed, index));
        _outstanding = new SemaphoreSlim(settings.MaxOutstandingPerDevice);
        _client = new MqttClient(new MqttClientOptions
        {
            Host = settings.Host,
            Port = settings.Port,
            ClientId = DeviceId,
            ProtocolVersion = settings.Protocol,
            UserName = settings.UserNamePattern is { } u ? settings.Substitute(u, DeviceId) : null,
            Password = settings.PasswordPattern is { } p ? settings.Substitute(p, DeviceId) : null,
            KeepAlive = TimeSpan.FromSeconds(settings.KeepAliveSeconds),
            Tls = settings.Tls ? new MqttTlsOptions { TrustedCa = ca, ClientCertificate = clientCertificate, TargetHost = settings.ServerName } : MqttTlsOptions.Disabled,
            OfflineQueueCapacity = Math.Max(10_000, settings.MaxOutstandingPerDevice),
            DurableQueue = settings.QueueDirectory is { } directory ? new MqttDurableQueueOptions { Directory = directory } : null,
        }, time);
        _client.Disconnected += (_, e) => LastDisconnect = e.ToString();
    }

    public string DeviceId { get; }
    public string Kind => _sensor.Kind;
    public long Sent => Interlocked.Read(ref _sent);
    public long Acked => Interlocked.Read(ref _acked);
    public long Failed => Interlocked.Read(ref _failed);
    /// <summary>The last seq generated: <see cref="Sent"/>, plus where a durable queue said the previous run stopped.</summary>
    public long LastSeq => Interlocked.Read(ref _lastSeq);
    public bool IsConnected => _client.IsConnected;
    public string? LastDisconnect { get; private set; }
    public string? ConnectError { get; private set; }

    public IReadOnlyList<AnomalyRecord> Anomalies
    {
        get
        {
            lock (_anomalies) return _anomalies.ToArray();
        }
    }

    public MqttClientStatistics Statistics => _client.GetStatistics();

    /// <summary>Connects (retrying until <paramref name="stop"/>), then publishes at the configured rate until the count or the stop.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        if (!await ConnectAsync(stop).ConfigureAwait(false)) return;
        var interval = TimeSpan.FromSeconds(1 / _settings.Rate);
        var tick = TimeSpan.FromMilliseconds(Math.Clamp(interval.TotalMilliseconds, 5, 250));
        var started = _time.GetTimestamp();
        // With a durable queue a restarted device goes on where it stopped: a seq is never used twice.
        var first = _client.LastQueuedSequence(DeviceId);
        var seq = first;
        using var timer = new PeriodicTimer(tick, _time);
        try
        {
            while (!stop.IsCancellationRequested)
            {
                // Catch up to where the schedule says we should be: pacing stays exact even with a coarse timer.
                var due = first + (long)Math.Floor(_time.GetElapsedTime(started).TotalSeconds * _settings.Rate) + 1;
                if (_settings.Count is { } count) due = Math.Min(due, count);
                while (seq < due && !stop.IsCancellationRequested)
                {
                    await _outstanding.WaitAsync(stop).ConfigureAwait(false);
                    seq++;
                    Publish(seq);
                }
                if (_settings.Count is { } total && seq >= total) break;
                await timer.WaitForNextTickAsync(stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Stopping is the normal end of a timed or interrupted run.
        }
    }

    private void Publish(long seq)
    {
        Interlocked.Exchange(ref _lastSeq, seq);
        var now = _time.GetUtcNow();
        var (value, anomaly) = _sensor.Next(now);
        if (anomaly is { } a)
        {
            lock (_anomalies) _anomalies.Add(new AnomalyRecord(seq, a switch { AnomalyKind.Spike => "spike", AnomalyKind.Stuck => "stuck", _ => "drift_jump" }));
        }
        var reading = new SensorReading(DeviceId, _sensor.Kind, value, _sensor.Unit, now, seq);
        Task<MqttPublishResult> publish;
        try
        {
            publish = _client.PublishReadingAsync(DeviceId, reading, _settings.QoS);
        }
        catch (Exception e) when (e is MqttClientException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _sent);
            Interlocked.Increment(ref _failed);
            _outstanding.Release();
            return;
        }
        Interlocked.Increment(ref _sent);
        Interlocked.Increment(ref _pending);
        _ = publish.ContinueWith(static (t, state) =>
        {
            var self = (DeviceSimulator)state!;
            if (t.IsCompletedSuccessfully && t.Result.IsSuccess) Interlocked.Increment(ref self._acked);
            else Interlocked.Increment(ref self._failed);
            Interlocked.Decrement(ref self._pending);
            self._outstanding.Release();
        }, this, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task<bool> ConnectAsync(CancellationToken stop)
    {
        var delay = TimeSpan.FromMilliseconds(500);
        var started = _time.GetTimestamp();
        while (!stop.IsCancellationRequested)
        {
            if (_time.GetElapsedTime(started) > _settings.ConnectWindow) return false;
            try
            {
                await _client.ConnectAsync(stop).ConfigureAwait(false);
                ConnectError = null;
                return true;
            }
            catch (MqttConnectException e)
            {
                ConnectError = e.Message;
                // A refusal (bad credentials, not authorized) will not fix itself: stop this device.
                if (e.ReasonCode is not null) return false;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return false;
            }
            try
            {
                await Task.Delay(delay, _time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 10_000));
        }
        return false;
    }

    /// <summary>Waits for outstanding publishes (up to the drain timeout), then disconnects normally.</summary>
    public async Task StopAsync()
    {
        var deadline = _time.GetTimestamp();
        while (Volatile.Read(ref _pending) > 0 && _time.GetElapsedTime(deadline) < _settings.DrainTimeout)
        {
            await Task.Delay(20, CancellationToken.None).ConfigureAwait(false);
        }
        await _client.DisconnectAsync().ConfigureAwait(false);
        // DisconnectAsync fails whatever was still outstanding; wait for those continuations to be counted.
        var settle = _time.GetTimestamp();
        while (Volatile.Read(ref _pending) > 0 && _time.GetElapsedTime(settle) < TimeSpan.FromSeconds(5))
        {
            await Task.Delay(10, CancellationToken.None).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync().ConfigureAwait(false);
        _outstanding.Dispose();
    }
}

internal sealed record AnomalyRecord(long Seq, string Type);
