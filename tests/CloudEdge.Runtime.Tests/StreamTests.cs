using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using CloudEdge.Runtime.Diagnostics;
using CloudEdge.Runtime.Streams;
using CloudEdge.Runtime.Tests.Grains;
using CloudEdge.Runtime.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.Runtime.Tests;

public sealed class StreamTests
{
    private static string NewKey() => Guid.NewGuid().ToString("N");

    private static Action<ISiloBuilder> Provider(string kind, string? directory, Action<StreamProviderOptions>? options = null) => kind switch
    {
        "memory" => s => s.AddMemoryStreams("streams", o => options?.Invoke(o)),
        _ => s => s.AddSqliteStreams("streams", o =>
        {
            o.DataDirectory = directory;
            options?.Invoke(o);
        }),
    };

    private static IStreamProvider Streams(TestSilo silo, string name = "streams") => silo.Services.GetRequiredKeyedService<IStreamProvider>(name);

    [Theory]
    [InlineData("memory")]
    [InlineData("sqlite")]
    public async Task Events_of_a_stream_arrive_in_order_under_concurrent_producers(string kind)
    {
        using var directory = new TempDirectory();
        await using var silo = await TestSilo.StartAsync(Provider(kind, directory.Path));
        var stream = Streams(silo).GetStream<SensorReading>(StreamId.Create("order", NewKey()));
        var received = new ConcurrentQueue<StreamEvent<SensorReading>>();
        await stream.SubscribeAsync(e =>
        {
            received.Enqueue(e);
            return Task.CompletedTask;
        }, StreamSequenceToken.Beginning);

        const int producers = 4, perProducer = 150;
        await Task.WhenAll(Enumerable.Range(0, producers).Select(p => Task.Run(async () =>
        {
            for (var i = 0; i < perProducer; i++)
            {
                if (i % 10 == 0)
                {
                    await stream.OnNextBatchAsync([new SensorReading($"p{p}", i)]);
                }
                else
                {
                    await stream.OnNextAsync(new SensorReading($"p{p}", i));
                }
            }
        })));

        await Wait.UntilAsync(() => received.Count >= producers * perProducer, "every event delivered");
        var events = received.ToArray();
        Assert.Equal(Enumerable.Range(1, producers * perProducer).Select(i => (long)i), events.Select(e => e.Token.SequenceNumber));
        foreach (var byProducer in events.GroupBy(e => e.Item.Sensor))
        {
            Assert.Equal(Enumerable.Range(0, perProducer), byProducer.Select(e => e.Item.Value));
        }

        Assert.Equal(events.Length, events.Select(e => e.EventId).Distinct().Count());
    }

    [Fact]
    public async Task An_explicit_grain_subscription_survives_deactivation_and_a_restart_without_losing_events()
    {
        using var directory = new TempDirectory();
        var consumer = NewKey();
        var streamKey = NewKey();
        var configure = Provider("sqlite", directory.Path);
        var received = StreamDeliveries.For(consumer);
        long[] Sequences() => [.. received.Select(d => d.Sequence).Distinct().Order()];

        await using (var first = await TestSilo.StartAsync(configure))
        {
            var grain = first.Grains.GetGrain<IStreamConsumerGrain>(GrainId.Create("streamconsumer", consumer));
            await grain.Subscribe("streams", "readings", streamKey);
            var stream = Streams(first).GetStream<SensorReading>(StreamId.Create("readings", streamKey));
            for (var i = 1; i <= 5; i++)
            {
                await stream.OnNextAsync(new SensorReading("s", i));
            }

            await Wait.UntilAsync(() => Sequences().Length == 5, "five events before deactivation");
            await grain.Deactivate();
            var runtime = first.Services.GetRequiredService<SiloRuntime>();
            await Wait.UntilAsync(() => !runtime.Catalog.TryGet(GrainId.Create("streamconsumer", consumer), out _), "the consumer to deactivate");
            for (var i = 6; i <= 10; i++)
            {
                await stream.OnNextAsync(new SensorReading("s", i));
            }

            await Wait.UntilAsync(() => Sequences().Length == 10, "delivery to reactivate the grain");
            // Published while nothing delivers: the subscription must pick these up after the restart.
            await Streams(first).GetStream<SensorReading>(StreamId.Create("readings", streamKey)).OnNextBatchAsync([new SensorReading("s", 11), new SensorReading("s", 12)]);
        }

        await using var second = await TestSilo.StartAsync(configure);
        var again = Streams(second).GetStream<SensorReading>(StreamId.Create("readings", streamKey));
        await again.OnNextBatchAsync(Enumerable.Range(13, 3).Select(i => new SensorReading("s", i)));
        await Wait.UntilAsync(() => Sequences().Length == 15, "every event after the restart");
        Assert.Equal(Enumerable.Range(1, 15).Select(i => (long)i), Sequences());
        Assert.Equal(Enumerable.Range(1, 15), received.Select(d => d.Value).Distinct().Order());
        Assert.Equal(1, await second.Grains.GetGrain<IStreamConsumerGrain>(GrainId.Create("streamconsumer", consumer)).SubscriptionCount("streams", "readings", streamKey));
    }

    [Fact]
    public async Task A_grain_resumes_its_stored_handles_in_OnActivateAsync_after_a_restart()
    {
        using var directory = new TempDirectory();
        var key = NewKey();
        void Configure(ISiloBuilder s) => s.AddSqliteStreams("durable", o => o.DataDirectory = directory.Path);

        await using (var first = await TestSilo.StartAsync(Configure))
        {
            await first.Grains.GetGrain<IStreamConsumerGrain>(GrainId.Create("resumingconsumer", key)).Subscribe("durable", "resume", key);
            await Streams(first, "durable").GetStream<SensorReading>(StreamId.Create("resume", key)).OnNextAsync(new SensorReading("s", 1));
            await Wait.UntilAsync(() => StreamDeliveries.For("first:" + key).Count == 1, "delivery to the first observer");
        }

        await using var second = await TestSilo.StartAsync(Configure);
        await Streams(second, "durable").GetStream<SensorReading>(StreamId.Create("resume", key)).OnNextAsync(new SensorReading("s", 2));
        await Wait.UntilAsync(() => StreamDeliveries.For("resumed:" + key).Any(d => d.Value == 2), "delivery to the resumed observer");
        Assert.DoesNotContain(StreamDeliveries.For("first:" + key), d => d.Value == 2);
    }

    [Theory]
    [InlineData("memory")]
    [InlineData("sqlite")]
    public async Task An_implicit_subscription_activates_the_grain_named_by_the_stream_key(string kind)
    {
        using var directory = new TempDirectory();
        await using var silo = await TestSilo.StartAsync(Provider(kind, directory.Path));
        var key = NewKey();
        var runtime = silo.Services.GetRequiredService<SiloRuntime>();
        Assert.False(runtime.Catalog.TryGet(GrainId.Create("telemetry", key), out _));

        var stream = Streams(silo).GetStream<SensorReading>(StreamId.Create("telemetry", key));
        await stream.OnNextBatchAsync([new SensorReading("t", 1), new SensorReading("t", 2), new SensorReading("t", 3)]);

        await Wait.UntilAsync(() => StreamDeliveries.For("telemetry:" + key).Count == 3, "the implicit subscriber to get three events");
        Assert.True(runtime.Catalog.TryGet(GrainId.Create("telemetry", key), out _));
        Assert.Equal(3, await silo.Grains.GetGrain<ITelemetryGrain>(key).Processed());
        Assert.Equal([1, 2, 3], StreamDeliveries.For("telemetry:" + key).Select(d => d.Value));
        // Another key is another grain.
        Assert.Equal(0, await silo.Grains.GetGrain<ITelemetryGrain>(NewKey()).Processed());
    }

    [Theory]
    [InlineData("memory")]
    [InlineData("sqlite")]
    public async Task A_subscriber_rewinds_from_a_token_or_starts_from_now(string kind)
    {
        using var directory = new TempDirectory();
        await using var silo = await TestSilo.StartAsync(Provider(kind, directory.Path));
        var stream = Streams(silo).GetStream<SensorReading>(StreamId.Create("rewind", NewKey()));
        var tokens = await stream.OnNextBatchAsync(Enumerable.Range(1, 10).Select(i => new SensorReading("r", i)));
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), tokens.Select(t => t.SequenceNumber));
        Assert.True(tokens[4] < tokens[5]);

        var rewound = new ConcurrentQueue<int>();
        var fromNow = new ConcurrentQueue<int>();
        await stream.SubscribeAsync((item, _) =>
        {
            rewound.Enqueue(item.Value);
            return Task.CompletedTask;
        }, tokens[4]);
        await stream.SubscribeAsync((item, _) =>
        {
            fromNow.Enqueue(item.Value);
            return Task.CompletedTask;
        });

        await stream.OnNextAsync(new SensorReading("r", 11));
        await Wait.UntilAsync(() => rewound.Count == 7 && fromNow.Count == 1, "rewound and live subscribers to catch up");
        Assert.Equal([5, 6, 7, 8, 9, 10, 11], rewound);
        Assert.Equal([11], fromNow);
    }

    [Fact]
    public async Task Delivery_is_at_least_once_and_the_dedupe_helper_drops_redeliveries()
    {
        await using var silo = await TestSilo.StartAsync(Provider("memory", null, o => o.RetryDelay = TimeSpan.FromMilliseconds(5)));
        var stream = Streams(silo).GetStream<SensorReading>(StreamId.Create("dedupe", NewKey()));
        var deduplicator = new StreamEventDeduplicator(100);
        var attempts = 0;
        var applied = new List<int>();
        await stream.SubscribeAsync(e =>
        {
            attempts++;
            if (deduplicator.TryMarkSeen(e))
            {
                applied.Add(e.Item.Value);
                // The side effect happened, then the consumer fails: the runtime delivers the event again.
                throw new IOException("acknowledgement lost");
            }

            return Task.CompletedTask;
        }, StreamSequenceToken.Beginning);

        await stream.OnNextBatchAsync(Enumerable.Range(1, 20).Select(i => new SensorReading("d", i)));
        await Wait.UntilAsync(() => Volatile.Read(ref attempts) >= 40, "every event redelivered once");
        Assert.Equal(Enumerable.Range(1, 20), applied);
        Assert.Empty(await Streams(silo).GetDeadLettersAsync());
    }

    [Fact]
    public void The_dedupe_helper_is_bounded()
    {
        var deduplicator = new StreamEventDeduplicator(2);
        var (a, b, c) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        Assert.True(deduplicator.TryMarkSeen(a));
        Assert.False(deduplicator.TryMarkSeen(a));
        Assert.True(deduplicator.TryMarkSeen(b));
        Assert.True(deduplicator.TryMarkSeen(c));
        Assert.Equal(2, deduplicator.Count);
        Assert.True(deduplicator.TryMarkSeen(a));
        Assert.Throws<ArgumentOutOfRangeException>(() => new StreamEventDeduplicator(0));
    }

    [Fact]
    public async Task A_failing_consumer_is_retried_then_dead_lettered_and_the_dead_letter_can_be_listed()
    {
        using var directory = new TempDirectory();
        long retried = 0, deadLettered = 0;
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == RuntimeTelemetry.Name && instrument.Name.StartsWith("cloudedge.runtime.stream.", StringComparison.Ordinal))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meters.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var isOurs = false;
            foreach (var tag in tags)
            {
                isOurs |= tag.Key == "cloudedge.stream.namespace" && (string?)tag.Value == "poison";
            }

            if (isOurs && instrument.Name == "cloudedge.runtime.stream.deliveries.retried")
            {
                Interlocked.Add(ref retried, value);
            }
            else if (isOurs && instrument.Name == "cloudedge.runtime.stream.events.dead_lettered")
            {
                Interlocked.Add(ref deadLettered, value);
            }
        });
        meters.Start();

        var consumer = NewKey();
        var streamKey = NewKey();
        await using var silo = await TestSilo.StartAsync(Provider("sqlite", directory.Path, o =>
        {
            o.MaxDeliveryAttempts = 3;
            o.RetryDelay = TimeSpan.FromMilliseconds(10);
        }));
        await silo.Grains.GetGrain<IStreamConsumerGrain>(GrainId.Create("streamconsumer", consumer)).Subscribe("streams", "poison", streamKey);
        var streamId = StreamId.Create("poison", streamKey);
        await Streams(silo).GetStream<SensorReading>(streamId).OnNextBatchAsync([new SensorReading("p", 1), new SensorReading("p", -1), new SensorReading("p", 2)]);

        await Wait.UntilAsync(() => StreamDeliveries.For(consumer).Any(d => d.Value == 2), "delivery to go on past the poison event");
        var letters = await Streams(silo).GetDeadLettersAsync(streamId);
        var letter = Assert.Single(letters);
        Assert.Equal(2, letter.Token.SequenceNumber);
        Assert.Equal(3, letter.Attempts);
        Assert.Equal($"streamconsumer/{consumer}", letter.Subscriber);
        Assert.Contains("poison reading -1", letter.Error, StringComparison.Ordinal);
        Assert.Contains("-1", letter.Payload, StringComparison.Ordinal);
        Assert.Equal([1, 2], StreamDeliveries.For(consumer).Select(d => d.Value));
        meters.RecordObservableInstruments();
        Assert.Equal(2, Interlocked.Read(ref retried));
        Assert.Equal(1, Interlocked.Read(ref deadLettered));
        Assert.Contains(await Streams(silo).GetDeadLettersAsync(), l => l.EventId == letter.EventId);
    }

    [Fact]
    public async Task A_grain_that_takes_longer_than_the_delivery_timeout_fails_the_attempt_and_delivery_goes_on_in_order()
    {
        var consumer = NewKey();
        var streamKey = NewKey();
        await using var silo = await TestSilo.StartAsync(Provider("memory", null, o =>
        {
            o.MaxDeliveryAttempts = 1;
            o.DeliveryTimeout = TimeSpan.FromMilliseconds(750);
        }));
        await silo.Grains.GetGrain<IStreamConsumerGrain>(GrainId.Create("streamconsumer", consumer)).Subscribe("streams", "slow", streamKey);
        var streamId = StreamId.Create("slow", streamKey);
        await Streams(silo).GetStream<SensorReading>(streamId).OnNextBatchAsync([new SensorReading("s", 1000), new SensorReading("s", 2)]);

        await Wait.UntilAsync(() => StreamDeliveries.For(consumer).Any(d => d.Value == 2), "the event after the slow one");
        var letter = Assert.Single(await Streams(silo).GetDeadLettersAsync(streamId));
        Assert.Equal(1, letter.Token.SequenceNumber);
        Assert.Contains("did not handle event 1", letter.Error, StringComparison.Ordinal);
        // The slow turn finished before the next one started: the grain saw its events in order.
        Assert.Equal([1000, 2], StreamDeliveries.For(consumer).Select(d => d.Value));
    }

    [Theory]
    [InlineData("memory")]
    [InlineData("sqlite")]
    public async Task Retention_drops_events_by_count_and_by_age(string kind)
    {
        using var directory = new TempDirectory();
        var time = new ManualTimeProvider(fireTimersOnThreadPool: true);
        await using var silo = await TestSilo.StartAsync(Provider(kind, directory.Path, o =>
        {
            o.RetentionMaxEventsPerStream = 5;
            o.RetentionMaxAge = TimeSpan.FromHours(1);
            o.RetentionPeriod = TimeSpan.FromMinutes(1);
        }), time: time);
        var byCount = Streams(silo).GetStream<SensorReading>(StreamId.Create("retention", NewKey()));
        var byAge = Streams(silo).GetStream<SensorReading>(StreamId.Create("retention", NewKey()));
        await byAge.OnNextBatchAsync([new SensorReading("old", 1), new SensorReading("old", 2)]);
        time.Advance(TimeSpan.FromMinutes(90));
        await byAge.OnNextAsync(new SensorReading("new", 3));
        await byCount.OnNextBatchAsync(Enumerable.Range(1, 10).Select(i => new SensorReading("c", i)));

        var provider = silo.Services.GetRequiredKeyedService<StreamProvider>("streams");
        await Wait.UntilAsync(async () =>
        {
            time.Advance(TimeSpan.FromMinutes(1));
            return (await provider.Store.ReadAsync(byCount.StreamId, 1, 100, CancellationToken.None)).Count == 5;
        }, "retention to run");

        Assert.Equal([6L, 7, 8, 9, 10], (await provider.Store.ReadAsync(byCount.StreamId, 1, 100, CancellationToken.None)).Select(e => e.Sequence));
        Assert.Equal([3L], (await provider.Store.ReadAsync(byAge.StreamId, 1, 100, CancellationToken.None)).Select(e => e.Sequence));

        // A subscriber rewinding to the beginning starts at the oldest retained event.
        var replayed = new ConcurrentQueue<int>();
        await byCount.SubscribeAsync((item, _) =>
        {
            replayed.Enqueue(item.Value);
            return Task.CompletedTask;
        }, StreamSequenceToken.Beginning);
        await Wait.UntilAsync(() => replayed.Count == 5, "the retained events to be replayed");
        Assert.Equal([6, 7, 8, 9, 10], replayed);

        // Sequence numbers go on after trimming.
        Assert.Equal(11, (await byCount.OnNextAsync(new SensorReading("c", 11))).SequenceNumber);
    }

    [Fact]
    public async Task The_producer_trace_is_continued_by_every_consumer_delivery()
    {
        using var producerSource = new ActivitySource("CloudEdge.Runtime.Tests.Sensor");
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is RuntimeTelemetry.Name or "CloudEdge.Runtime.Tests.Sensor",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);

        var consumer = NewKey();
        var streamKey = NewKey();
        await using var silo = await TestSilo.StartAsync(Provider("memory", null));
        await silo.Grains.GetGrain<IStreamConsumerGrain>(GrainId.Create("streamconsumer", consumer)).Subscribe("streams", "traced", streamKey);
        var external = new ConcurrentQueue<string>();
        var stream = Streams(silo).GetStream<SensorReading>(StreamId.Create("traced", streamKey));
        await stream.SubscribeAsync(e =>
        {
            external.Enqueue(Activity.Current?.TraceId.ToString() ?? "none");
            return Task.CompletedTask;
        });

        ActivityTraceId traceId;
        using (var sensor = producerSource.StartActivity("sensor reading", ActivityKind.Producer))
        {
            Assert.NotNull(sensor);
            traceId = sensor.TraceId;
            await stream.OnNextAsync(new SensorReading("s", 1));
        }

        await Wait.UntilAsync(() => !StreamDeliveries.For(consumer).IsEmpty && !external.IsEmpty, "both deliveries");
        var delivery = Assert.Single(StreamDeliveries.For(consumer));
        Assert.Equal(traceId.ToString(), delivery.TraceId);
        Assert.Equal(traceId.ToString(), Assert.Single(external));
        Assert.StartsWith($"00-{traceId}-", delivery.TraceParent, StringComparison.Ordinal);

        await Wait.UntilAsync(() => stopped.Count(a => a.TraceId == traceId && a.OperationName == "deliver traced") == 2, "two delivery spans");
        var publish = Assert.Single(stopped, a => a.TraceId == traceId && a.OperationName == "publish traced");
        Assert.Equal(ActivityKind.Producer, publish.Kind);
        Assert.All(stopped.Where(a => a.TraceId == traceId && a.OperationName == "deliver traced"), a =>
        {
            Assert.Equal(ActivityKind.Consumer, a.Kind);
            Assert.Equal(publish.SpanId, a.ParentSpanId);
        });
    }

    [Fact]
    public async Task An_external_reader_with_a_small_buffer_gets_every_event_in_order()
    {
        using var directory = new TempDirectory();
        await using var silo = await TestSilo.StartAsync(Provider("sqlite", directory.Path));
        var stream = Streams(silo).GetStream<SensorReading>(StreamId.Create("sse", NewKey()));
        await stream.OnNextBatchAsync(Enumerable.Range(1, 40).Select(i => new SensorReading("e", i)));
        var tokens = await stream.OnNextBatchAsync(Enumerable.Range(41, 10).Select(i => new SensorReading("e", i)));

        var values = new List<int>();
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await foreach (var e in stream.ReadEventsAsync(new StreamSequenceToken(3), capacity: 4, cancellationToken: cancel.Token))
        {
            values.Add(e.Item.Value);
            await Task.Yield();
            if (e.Token == tokens[^1])
            {
                break;
            }
        }

        Assert.Equal(Enumerable.Range(3, 48), values);
        // Ending the enumeration unsubscribed the reader.
        await Wait.UntilAsync(async () => (await stream.GetAllSubscriptionHandles()).Count == 0, "the reader's subscription to end");
    }

    [Fact]
    public async Task Bad_input_gets_clear_errors()
    {
        Assert.Throws<ArgumentException>(() => StreamId.Create("a/b", "k"));
        Assert.Throws<FormatException>(() => StreamId.Parse("nokey"));
        Assert.Equal(StreamId.Create("ns", "k/1"), StreamId.Parse("ns/k/1"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new StreamSequenceToken(0));

        await using var silo = await TestSilo.StartAsync(Provider("memory", null));
        var error = Assert.Throws<InvalidOperationException>(() => silo.Services.GetRequiredService<IStreamProviderFactory>().GetStreamProvider("missing"));
        Assert.Contains("'streams'", error.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => TestSilo.StartAsync(s => s.AddMemoryStreams("x").AddMemoryStreams("x")).GetAwaiter().GetResult());

        var stream = Streams(silo).GetStream<SensorReading>(StreamId.Create("bad", NewKey()));
        var handle = await stream.SubscribeAsync(_ => Task.CompletedTask);
        await handle.UnsubscribeAsync();
        var gone = await Assert.ThrowsAsync<InvalidOperationException>(() => handle.ResumeAsync(_ => Task.CompletedTask));
        Assert.Contains("does not exist", gone.Message, StringComparison.Ordinal);

        // Implicit subscriptions belong to the grain type and cannot be removed.
        var key = NewKey();
        await Streams(silo).GetStream<SensorReading>(StreamId.Create("telemetry", key)).OnNextAsync(new SensorReading("t", 1));
        var implicitHandle = Assert.Single(await Streams(silo).GetStream<SensorReading>(StreamId.Create("telemetry", key)).GetAllSubscriptionHandles());
        await Assert.ThrowsAsync<InvalidOperationException>(() => implicitHandle.UnsubscribeAsync());
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Streams(silo).GetDeadLettersAsync(limit: 0));

        var invalid = await Assert.ThrowsAsync<InvalidOperationException>(() => TestSilo.StartAsync(s => s.AddMemoryStreams("bad", o => o.MaxDeliveryAttempts = 0)));
        Assert.Contains("Stream provider 'bad'", invalid.Message, StringComparison.Ordinal);
    }
}
