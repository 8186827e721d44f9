using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using CloudEdge.Runtime.Diagnostics;
using CloudEdge.Runtime.Tests.Grains;
using CloudEdge.Runtime.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CloudEdge.Runtime.Tests;

public sealed class FilterLog
{
    public ConcurrentQueue<string> Entries { get; } = new();
}

public sealed class OuterOutgoing(FilterLog log) : IOutgoingGrainCallFilter
{
    public async Task Invoke(IOutgoingGrainCallContext context)
    {
        log.Entries.Enqueue($"out1 {context.InterfaceName}.{context.MethodName} -> {context.TargetId}");
        RequestContext.Set("from-filter", "yes");
        await context.Invoke();
        log.Entries.Enqueue($"out1 done {context.Result}");
    }
}

public sealed class InnerOutgoing(FilterLog log) : IOutgoingGrainCallFilter
{
    public async Task Invoke(IOutgoingGrainCallContext context)
    {
        log.Entries.Enqueue("out2");
        await context.Invoke();
        log.Entries.Enqueue("out2 done");
    }
}

public sealed class OuterIncoming(FilterLog log) : IIncomingGrainCallFilter
{
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        log.Entries.Enqueue($"in1 {context.Grain?.GetType().Name} arg0={(context.ArgumentCount > 0 ? context.GetArgument(0) : null)}");
        await context.Invoke();
        log.Entries.Enqueue("in1 done");
    }
}

public sealed class InnerIncoming(FilterLog log) : IIncomingGrainCallFilter
{
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        log.Entries.Enqueue("in2");
        await context.Invoke();
        if (context.MethodName == nameof(IEchoGrain.WhoAmI))
        {
            context.Result = "rewritten by filter";
        }

        log.Entries.Enqueue("in2 done");
    }
}

public sealed class FilterAndTelemetryTests
{
    [Fact]
    public async Task Filters_run_in_order_around_the_call_and_can_set_request_context_and_result()
    {
        var log = new FilterLog();
        await using var silo = await TestSilo.StartAsync(s => s
            .AddOutgoingGrainCallFilter<OuterOutgoing>()
            .AddOutgoingGrainCallFilter<InnerOutgoing>()
            .AddIncomingGrainCallFilter<OuterIncoming>()
            .AddIncomingGrainCallFilter<InnerIncoming>(), services: s => s.AddSingleton(log));
        var echo = silo.Grains.GetGrain<IEchoGrain>("filters");
        Assert.Equal("yes", await echo.ReadContext("from-filter"));
        Assert.Equal(
            ["out1 IEchoGrain.ReadContext -> echo/filters", "out2", "in1 EchoGrain arg0=from-filter", "in2", "in2 done", "in1 done", "out2 done", "out1 done yes"],
            log.Entries.ToArray());
        Assert.Equal("rewritten by filter", await echo.WhoAmI());
    }

    [Fact]
    public async Task Every_call_is_a_span_and_the_trace_continues_across_grain_calls()
    {
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is RuntimeTelemetry.Name or "CloudEdge.Runtime.Tests",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        using var testSource = new ActivitySource("CloudEdge.Runtime.Tests");

        await using var silo = await TestSilo.StartAsync();
        string a = Guid.NewGuid().ToString("N"), b = Guid.NewGuid().ToString("N");
        ActivityTraceId traceId;
        using (var root = testSource.StartActivity("test-root"))
        {
            traceId = root!.TraceId;
            Assert.Equal(b, await silo.Grains.GetGrain<IPingGrain>(a).Ping(b, 1));
        }

        await Wait.UntilAsync(() => spans.Count(s => s.TraceId == traceId && s.Source.Name == RuntimeTelemetry.Name) >= 4, "four runtime spans");
        var runtimeSpans = spans.Where(s => s.TraceId == traceId && s.Source.Name == RuntimeTelemetry.Name).ToList();
        Assert.Contains(runtimeSpans, s => s.Kind == ActivityKind.Client && s.OperationName == "IPingGrain/Ping" && (string?)s.GetTagItem("cloudedge.grain.id") == $"ping/{a}");
        Assert.Contains(runtimeSpans, s => s.Kind == ActivityKind.Server && (string?)s.GetTagItem("cloudedge.grain.id") == $"ping/{b}");

        // The server span of b descends from the client span made inside a's turn.
        var serverB = runtimeSpans.Single(s => s.Kind == ActivityKind.Server && (string?)s.GetTagItem("cloudedge.grain.id") == $"ping/{b}");
        var clientToB = runtimeSpans.Single(s => s.SpanId == serverB.ParentSpanId);
        Assert.Equal(ActivityKind.Client, clientToB.Kind);
        var serverA = runtimeSpans.Single(s => s.SpanId == clientToB.ParentSpanId);
        Assert.Equal($"ping/{a}", serverA.GetTagItem("cloudedge.grain.id"));
    }

    [Fact]
    public async Task An_ambient_activity_reaches_the_grain_as_traceparent_even_without_a_runtime_listener()
    {
        using var source = new ActivitySource("CloudEdge.Runtime.Tests.Ambient");
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == source.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        await using var silo = await TestSilo.StartAsync();
        using var request = source.StartActivity("http-request")!;
        var seen = await silo.Grains.GetGrain<IEchoGrain>(Guid.NewGuid().ToString("N")).ReadContext(RuntimeTelemetry.TraceParentKey);
        Assert.NotNull(seen);
        Assert.Contains(request.TraceId.ToHexString(), seen, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Calls_latency_errors_and_activations_are_measured()
    {
        var siloName = "metrics-" + Guid.NewGuid().ToString("N");
        var longs = new ConcurrentQueue<(string Name, long Value)>();
        var doubles = new ConcurrentQueue<(string Name, double Value)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == RuntimeTelemetry.Name && instrument.Meter.Tags?.Any(t => t.Value as string == siloName) == true)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => longs.Enqueue((instrument.Name, value)));
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) => doubles.Enqueue((instrument.Name, value)));
        listener.Start();

        await using var silo = await TestSilo.StartAsync(options: o => o.SiloName = siloName);
        var echo = silo.Grains.GetGrain<IEchoGrain>("m");
        for (var i = 0; i < 10; i++)
        {
            await echo.Twice(i);
        }

        await Assert.ThrowsAsync<InvalidOperationException>(() => echo.Throw("x"));
        listener.RecordObservableInstruments();
        Assert.True(longs.Where(m => m.Name == "cloudedge.runtime.grain.calls").Sum(m => m.Value) >= 11);
        Assert.True(longs.Where(m => m.Name == "cloudedge.runtime.grain.call.errors").Sum(m => m.Value) >= 1);
        Assert.True(doubles.Count(m => m.Name == "cloudedge.runtime.grain.call.duration") >= 11);
        Assert.Contains(longs, m => m.Name == "cloudedge.runtime.activations.active" && m.Value >= 1);
    }
}
