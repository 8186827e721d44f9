using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace CloudEdge.DeviceSdk.Tests;

public sealed class TelemetryTests : IDisposable
{
    private readonly ActivityListener _listener;
    private readonly ConcurrentQueue<Activity> _stopped = new();

    public TelemetryTests()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == DeviceSdkTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => _stopped.Enqueue(a),
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public void Dispose() => _listener.Dispose();

    private static readonly DateTimeOffset At = new(2026, 11, 21, 18, 0, 0, TimeSpan.Zero);

    [Fact]
    public void The_payload_is_exactly_the_contract()
    {
        var reading = new SensorReading("sim-0001", SensorKinds.Temperature, 21.37, "C", At, 123);
        Assert.Equal("""{"deviceId":"sim-0001","kind":"temperature","value":21.37,"unit":"C","ts":"2026-11-21T18:00:00.000Z","seq":123}""",
            Encoding.UTF8.GetString(TelemetryJson.Serialize(reading)));
        Assert.Equal("""{"deviceId":"sim-0001","kind":"humidity","value":40,"unit":"%RH","ts":"2026-11-21T18:00:00.250Z","seq":1,"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"ce=1"}""",
            Encoding.UTF8.GetString(TelemetryJson.Serialize(new SensorReading("sim-0001", "humidity", 40, "%RH", At.AddMilliseconds(250).ToOffset(TimeSpan.FromHours(2)), 1),
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "ce=1")));
        Assert.Equal("devices/sim-0001/telemetry", TelemetryJson.TopicFor("sim-0001"));
        Assert.Equal(["C", "%RH", "hPa", "mm/s"], SensorKinds.All.Select(SensorKinds.UnitOf));
    }

    [Fact]
    public void Parsing_round_trips_and_bad_payloads_say_what_is_wrong()
    {
        var reading = new SensorReading("sim-0042", SensorKinds.Vibration, 3.25, "mm/s", At, 9);
        var parsed = TelemetryJson.Parse(TelemetryJson.Serialize(reading, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
        Assert.Equal(reading, parsed.Reading);
        Assert.Equal("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", parsed.TraceParent);
        Assert.Null(parsed.TraceState);

        Assert.Contains("\"seq\"", Assert.Throws<FormatException>(() => TelemetryJson.Parse("""{"deviceId":"d","kind":"pressure","value":1013.2,"unit":"hPa","ts":"2026-11-21T18:00:00.000Z"}"""u8)).Message);
        Assert.Contains("hPa", Assert.Throws<FormatException>(() => TelemetryJson.Parse("""{"deviceId":"d","kind":"pressure","value":1,"unit":"bar","ts":"2026-11-21T18:00:00.000Z","seq":1}"""u8)).Message);
        Assert.Contains("ts", Assert.Throws<FormatException>(() => TelemetryJson.Parse("""{"deviceId":"d","kind":"pressure","value":1,"unit":"hPa","ts":"yesterday","seq":1}"""u8)).Message);
        Assert.Throws<FormatException>(() => TelemetryJson.Parse("not json"u8));
        Assert.Throws<ArgumentException>(() => TelemetryJson.Serialize(reading with { Value = double.NaN }));
        Assert.Throws<ArgumentException>(() => TelemetryJson.Serialize(reading with { Kind = "light" }));
        Assert.Throws<ArgumentException>(() => TelemetryJson.Serialize(reading with { Sequence = 0 }));
        Assert.Throws<ArgumentException>(() => TelemetryJson.TopicFor("a/b"));
    }

    [Fact]
    public async Task On_v5_the_publish_span_context_travels_as_user_properties_seen_by_mosquitto_sub()
    {
        await using var broker = await Mosquitto.StartAsync();
        var deviceId = "sim-" + Guid.NewGuid().ToString("N")[..8];
        var topic = TelemetryJson.TopicFor(deviceId);
        var sub = ExternalProcess.RunAsync("mosquitto_sub",
            ["-h", "127.0.0.1", "-p", broker.Port.ToString(), "-V", "mqttv5", "-q", "1", "-t", topic, "-C", "1", "-W", "60", "-F", "%P|%p"], TimeSpan.FromSeconds(90));
        await using var device = new MqttClient(Clients.Options(broker.Port, deviceId));
        await device.ConnectAsync();
        var reading = new SensorReading(deviceId, SensorKinds.Pressure, 1013.25, "hPa", At, 1);

        // mosquitto_sub subscribes some time after it starts: publish until it has received one.
        long seq = 0;
        while (!sub.IsCompleted)
        {
            await device.PublishReadingAsync(deviceId, reading with { Sequence = ++seq });
            await Task.WhenAny(sub, Task.Delay(200));
        }
        var received = await sub;
        Assert.True(received.ExitCode == 0, received.Stderr);
        var line = received.StdoutText.Trim();
        var bar = line.IndexOf('|');
        var properties = line[..bar];
        var payload = TelemetryJson.Parse(Encoding.UTF8.GetBytes(line[(bar + 1)..]));
        Assert.Null(payload.TraceParent);
        var span = _stopped.Single(a => Equals(a.GetTagItem("cloudedge.device.id"), deviceId) && Equals(a.GetTagItem("cloudedge.telemetry.seq"), payload.Reading.Sequence));
        Assert.Equal($"traceparent:{span.Id}", properties);
        Assert.Equal(ActivityKind.Producer, span.Kind);
        Assert.Equal(topic, span.GetTagItem("messaging.destination.name"));
    }

    [Fact]
    public async Task On_v311_the_context_goes_into_the_JSON_and_tracestate_is_carried()
    {
        await using var broker = await Mosquitto.StartAsync();
        var deviceId = "sim-" + Guid.NewGuid().ToString("N")[..8];
        await using var collector = await Collector.StartAsync(broker.Port, TelemetryJson.TopicFor(deviceId), MqttProtocolVersion.V311);
        await using var device = new MqttClient(Clients.Options(broker.Port, deviceId, MqttProtocolVersion.V311));
        await device.ConnectAsync();

        using (var parent = new Activity("edge-job").SetIdFormat(ActivityIdFormat.W3C).Start())
        {
            parent.TraceStateString = "cloudedge=sim";
            var result = await device.PublishReadingAsync(deviceId, new SensorReading(deviceId, SensorKinds.Temperature, 21.37, "C", At, 1), MqttQualityOfService.ExactlyOnce);
            Assert.True(result.IsSuccess);
        }

        var m = Assert.Single(await collector.WaitForAsync(1));
        var envelope = TelemetryJson.Parse(m.Payload.Span);
        var span = _stopped.Single(a => Equals(a.GetTagItem("cloudedge.device.id"), deviceId));
        Assert.Equal(span.Id, envelope.TraceParent);
        Assert.Equal("cloudedge=sim", envelope.TraceState);
        Assert.Equal(21.37, envelope.Reading.Value);
        using var json = JsonDocument.Parse(m.Payload);
        Assert.Equal(["deviceId", "kind", "value", "unit", "ts", "seq", "traceparent", "tracestate"], json.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Empty(m.UserProperties);
    }

    [Fact]
    public async Task On_v5_a_raw_publish_inside_a_span_carries_traceparent_and_tracestate()
    {
        await using var broker = await Mosquitto.StartAsync();
        var topic = $"raw/{Guid.NewGuid():N}";
        await using var collector = await Collector.StartAsync(broker.Port, topic);
        await using var device = new MqttClient(Clients.Options(broker.Port));
        await device.ConnectAsync();
        using (var parent = new Activity("job").SetIdFormat(ActivityIdFormat.W3C).Start())
        {
            parent.TraceStateString = "vendor=x";
            await device.PublishAsync(topic, "{}"u8.ToArray());
        }
        var m = Assert.Single(await collector.WaitForAsync(1));
        var span = _stopped.Single(a => Equals(a.GetTagItem("messaging.destination.name"), topic));
        Assert.Equal(span.Id, m.GetUserProperty("traceparent"));
        Assert.Equal("vendor=x", m.GetUserProperty("tracestate"));
    }

    [Fact]
    public async Task The_publish_span_is_a_child_of_the_callers_span_and_never_becomes_current()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var device = new MqttClient(Clients.Options(broker.Port));
        await device.ConnectAsync();
        var topic = $"spans/{Guid.NewGuid():N}";
        using var parent = new Activity("caller").SetIdFormat(ActivityIdFormat.W3C).Start();
        await device.PublishAsync(topic, "1"u8.ToArray());
        Assert.Same(parent, Activity.Current);
        await device.PublishAsync(topic, "2"u8.ToArray(), MqttQualityOfService.AtMostOnce);
        Assert.Same(parent, Activity.Current);
        var spans = _stopped.Where(a => Equals(a.GetTagItem("messaging.destination.name"), topic)).ToList();
        Assert.Equal(2, spans.Count);
        Assert.All(spans, s => Assert.Equal(parent.SpanId, s.ParentSpanId));
        Assert.All(spans, s => Assert.Equal(parent.TraceId, s.TraceId));
    }

    [Fact]
    public async Task A_reading_for_another_device_or_a_bad_reading_is_refused_before_anything_is_sent()
    {
        await using var broker = await Mosquitto.StartAsync();
        await using var device = new MqttClient(Clients.Options(broker.Port, "sim-0001"));
        await device.ConnectAsync();
        var reading = new SensorReading("sim-0002", SensorKinds.Temperature, 20, "C", At, 1);
        await Assert.ThrowsAsync<ArgumentException>(() => device.PublishReadingAsync("sim-0001", reading));
        await Assert.ThrowsAsync<ArgumentException>(() => device.PublishReadingAsync("sim-0002", reading with { Unit = "F" }));
        Assert.Equal(0, device.GetStatistics().Published);
    }

    [Fact]
    public void Options_are_validated_with_the_option_named()
    {
        Assert.Equal("KeepAlive", Assert.Throws<ArgumentException>(() => new MqttClient(new MqttClientOptions { Host = "h", ClientId = "c", KeepAlive = TimeSpan.FromMilliseconds(1500) })).ParamName);
        Assert.Equal("Password", Assert.Throws<ArgumentException>(() => new MqttClient(new MqttClientOptions { Host = "h", ClientId = "c", ProtocolVersion = MqttProtocolVersion.V311, Password = "p" })).ParamName);
        Assert.Equal("OfflineQueueCapacity", Assert.Throws<ArgumentException>(() => new MqttClient(new MqttClientOptions { Host = "h", ClientId = "c", OfflineQueueCapacity = 0 })).ParamName);
        var defaults = new MqttClientOptions { Host = "h", ClientId = "c" };
        Assert.True(defaults.Tls.Enabled, "TLS is on unless switched off");
        Assert.Equal(MqttProtocolVersion.V500, defaults.ProtocolVersion);
        Assert.Equal(8883, defaults.EffectivePort);
        Assert.Equal("Will", Assert.Throws<ArgumentException>(() => new MqttClient(new MqttClientOptions { Host = "h", ClientId = "c", Will = new MqttMessage { Topic = "a/#" } })).ParamName);
    }
}
