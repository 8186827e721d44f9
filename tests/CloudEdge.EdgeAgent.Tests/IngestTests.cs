using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using CloudEdge.EdgePipeline.Tracing;
using CloudEdge.EdgePipeline;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Storage;
using CloudEdge.EdgePipeline.Windows;
using CloudEdge.Mqtt;
using CloudEdge.Mqtt.Broker;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.EdgeAgent.Tests;

/// <summary>Telemetry through the real embedded broker (our Kestrel connection handler) into the real pipeline.</summary>
[Collection(OrtCollection.Name)]
public sealed class IngestTests
{
    private const string Password = "s3cret-device-password";

    private static async Task<MqttServer> StartBrokerAsync(PipelineHarness harness, params string[] devices)
    {
        return await MqttServer.StartAsync(
            new MqttServerOptions { TcpEndPoint = new IPEndPoint(IPAddress.Loopback, 0) },
            broker =>
            {
                foreach (var device in devices) broker.Users[device] = MqttPasswordHasher.Hash(Password, iterations: 1000);
                // Devices publish only under their own devices/{id}/.
                broker.AclRules.Add(new MqttAclRule { Access = MqttAclAccess.Publish, Topic = "devices/{username}/#" });
            },
            services => services.AddSingleton<IMqttPublishInterceptor>(new TelemetryIngest(harness.Pipeline, harness.Telemetry)));
    }

    private static string Json(string device, string kind, string value, long seq, string unit, DateTimeOffset ts, string? traceParent = null) =>
        $$"""{"deviceId":"{{device}}","kind":"{{kind}}","value":{{value}},"unit":"{{unit}}","ts":"{{ts.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)}}","seq":{{seq}}{{(traceParent is null ? "" : $",\"traceparent\":\"{traceParent}\"")}}}""";

    [Fact]
    public async Task A_v5_reading_is_acknowledged_after_its_journal_commit_and_its_alert_keeps_the_user_property_trace()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        await using var harness = await PipelineHarness.StartAsync(dir.Path, time);
        await using var server = await StartBrokerAsync(harness, "sensor-1");
        await using var client = await RawMqttClient.ConnectAsync(server.TcpPort!.Value, "sensor-1", "sensor-1", Password);

        var now = time.GetUtcNow();
        Assert.Equal(MqttReasonCode.Success, await client.PublishAsync("devices/sensor-1/telemetry", Json("sensor-1", "vibration", "1.2", 1, "mm/s", now)));
        // The PUBACK came after the commit: the reading is in the journal now.
        using (var db = EdgeDatabase.Open(dir.Path)) Assert.Equal(1, ReadingJournal.Count(db));

        for (var i = 2; i <= 40; i++)
        {
            var value = (1.2 + 0.05 * Math.Sin(i)).ToString("R", CultureInfo.InvariantCulture);
            Assert.Equal(MqttReasonCode.Success, await client.PublishAsync("devices/sensor-1/telemetry", Json("sensor-1", "vibration", value, i, "mm/s", now), ReadingTraces.NewTraceParent()));
        }
        var spikeTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        Assert.Equal(MqttReasonCode.Success, await client.PublishAsync("devices/sensor-1/telemetry", Json("sensor-1", "vibration", "14.2", 41, "mm/s", now), spikeTrace));

        await Wait.UntilAsync(() => harness.Outbox.Count("alert") >= 1, "the spike's alert");
        var alert = Assert.Single(harness.Outbox.ReadBatch(100, long.MaxValue), i => i.Type == "alert");
        Assert.Equal(spikeTrace, alert.TraceParent);
        Assert.Equal("sensor-1", alert.DeviceId);
        Assert.Contains("\"readingSeq\":41", alert.Body);
    }

    [Fact]
    public async Task Bad_payloads_are_refused_with_reason_codes_and_counted_and_the_connection_lives_on()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        await using var harness = await PipelineHarness.StartAsync(dir.Path, time);
        var rejected = new List<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter == harness.Telemetry.Meter && instrument.Name == "cloudedge.edge.readings.rejected") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "reason") lock (rejected) rejected.Add((string)tag.Value!);
            }
        });
        listener.Start();
        await using var server = await StartBrokerAsync(harness, "sensor-2", "sensor-3");
        await using var client = await RawMqttClient.ConnectAsync(server.TcpPort!.Value, "sensor-2", "sensor-2", Password);
        var now = time.GetUtcNow();
        const string topic = "devices/sensor-2/telemetry";

        Assert.Equal(MqttReasonCode.PayloadFormatInvalid, await client.PublishAsync(topic, "not json at all"));
        Assert.Equal(MqttReasonCode.PayloadFormatInvalid, await client.PublishAsync(topic, "{\"deviceId\":\"sensor-2\",\"kind\":"));
        Assert.Equal(MqttReasonCode.PayloadFormatInvalid, await client.PublishAsync(topic, "[1,2,3]"));
        Assert.Equal(MqttReasonCode.ImplementationSpecificError, await client.PublishAsync(topic, Json("sensor-2", "radiation", "1", 1, "Sv", now)));
        Assert.Equal(MqttReasonCode.ImplementationSpecificError, await client.PublishAsync(topic, Json("sensor-3", "temperature", "21", 1, "C", now)));
        Assert.Equal(MqttReasonCode.ImplementationSpecificError, await client.PublishAsync(topic, Json("sensor-2", "temperature", "\"NaN\"", 1, "C", now)));
        Assert.Equal(MqttReasonCode.ImplementationSpecificError, await client.PublishAsync(topic, Json("sensor-2", "temperature", "21", 0, "C", now)));
        Assert.Equal(MqttReasonCode.ImplementationSpecificError, await client.PublishAsync(topic, Json("sensor-2", "temperature", "21", 1, "F", now)));
        Assert.Equal(MqttReasonCode.ImplementationSpecificError, await client.PublishAsync(topic, "{\"deviceId\":\"sensor-2\",\"kind\":\"humidity\",\"value\":40,\"unit\":\"%RH\",\"seq\":3}"));
        // Another device's topic: the broker's ACL refuses it before the pipeline sees it.
        Assert.Equal(MqttReasonCode.NotAuthorized, await client.PublishAsync("devices/sensor-3/telemetry", Json("sensor-3", "temperature", "21", 1, "C", now)));
        // The same connection still delivers a good reading.
        Assert.Equal(MqttReasonCode.Success, await client.PublishAsync(topic, Json("sensor-2", "temperature", "21.37", 1, "C", now)));

        lock (rejected)
        {
            Assert.Equal(3, rejected.Count(r => r == "malformed_json"));
            Assert.Equal(1, rejected.Count(r => r == "device_mismatch"));
            Assert.Equal(5, rejected.Count(r => r == "invalid_field"));
        }
        using var db = EdgeDatabase.Open(dir.Path);
        Assert.Equal(1, ReadingJournal.Count(db));
    }

    [Fact]
    public async Task A_mosquitto_pub_311_reading_carries_its_trace_context_in_the_json()
    {
        using var dir = new TempDirectory();
        var time = new ManualTimeProvider();
        await using var harness = await PipelineHarness.StartAsync(dir.Path, time);
        await using var server = await StartBrokerAsync(harness, "sensor-4");
        var now = time.GetUtcNow();
        var spikeTrace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        var lines = Enumerable.Range(1, 40).Select(i => Json("sensor-4", "temperature", (24 + 0.1 * Math.Sin(i)).ToString("R", CultureInfo.InvariantCulture), i, "C", now, ReadingTraces.NewTraceParent()))
            .Append(Json("sensor-4", "temperature", "38", 41, "C", now, spikeTrace));

        var start = new ProcessStartInfo("mosquitto_pub")
        {
            RedirectStandardInput = true,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        foreach (var arg in new[] { "-h", "127.0.0.1", "-p", server.TcpPort!.Value.ToString(CultureInfo.InvariantCulture), "-V", "mqttv311", "-q", "1",
                     "-i", "sensor-4", "-u", "sensor-4", "-P", Password, "-t", "devices/sensor-4/telemetry", "-l" })
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        foreach (var line in lines) await process.StandardInput.WriteLineAsync(line);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(Wait.Long);
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, await process.StandardError.ReadToEndAsync());

        await Wait.UntilAsync(() => harness.Outbox.Count("alert") >= 1, "the spike's alert");
        var alert = Assert.Single(harness.Outbox.ReadBatch(100, long.MaxValue), i => i.Type == "alert");
        Assert.Equal(spikeTrace, alert.TraceParent);
        using var db = EdgeDatabase.Open(dir.Path);
        Assert.Equal(41, ReadingJournal.Count(db));
    }
}
