using System.Diagnostics.Metrics;
using CloudEdge.EdgePipeline.Inference;
using CloudEdge.EdgePipeline.Ingest;
using CloudEdge.EdgePipeline.Ota;
using CloudEdge.EdgePipeline.Outbox;
using CloudEdge.EdgePipeline.Uplink;
using CloudEdge.Mqtt.Broker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CloudEdge.EdgePipeline;

/// <summary>Model location settings (configuration section <c>EdgeAgent</c>).</summary>
public sealed class ModelOptions
{
    /// <summary>The model folder used until OTA installs another (manifest.json + the .onnx file).</summary>
    public string ModelDirectory { get; set; } = Path.Combine("models", "anomaly", "v1");
}

public static class EdgePipelineServiceCollectionExtensions
{
    public const string Section = "EdgeAgent";

    /// <summary>
    /// Registers the pipeline, its broker hook, the uplink and OTA from configuration section <c>EdgeAgent</c>
    /// (Outbox, Uplink and Ota subsections). The host adds the broker and its listeners.
    /// </summary>
    public static IServiceCollection AddEdgePipeline(this IServiceCollection services, IConfiguration configuration)
    {
        var section = configuration.GetSection(Section);
        services.Configure<EdgePipelineOptions>(section);
        services.Configure<ModelOptions>(section);
        services.Configure<OutboxOptions>(section.GetSection("Outbox"));
        services.Configure<UplinkOptions>(section.GetSection("Uplink"));
        services.Configure<OtaOptions>(section.GetSection("Ota"));
        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(sp => new EdgeTelemetry(sp.GetService<IMeterFactory>()));
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<EdgePipelineOptions>>().Value;
            return new ModelSlot(ActiveModel.Load(options.DataDirectory,
                sp.GetRequiredService<IOptions<ModelOptions>>().Value.ModelDirectory, sp.GetService<ILogger<ModelSlot>>()));
        });
        services.AddSingleton(sp => new OutboxStore(
            sp.GetRequiredService<IOptions<EdgePipelineOptions>>().Value.DataDirectory,
            sp.GetRequiredService<IOptions<OutboxOptions>>().Value,
            sp.GetRequiredService<EdgeTelemetry>(),
            sp.GetService<ILogger<OutboxStore>>()));
        services.AddSingleton<UplinkWakeup>();
        services.AddSingleton(sp => new TelemetryPipeline(
            sp.GetRequiredService<IOptions<EdgePipelineOptions>>().Value,
            sp.GetRequiredService<OutboxStore>(),
            sp.GetRequiredService<UplinkWakeup>(),
            sp.GetRequiredService<ModelSlot>(),
            sp.GetRequiredService<EdgeTelemetry>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<TelemetryPipeline>>()));
        services.AddHostedService(sp => sp.GetRequiredService<TelemetryPipeline>());
        services.AddSingleton<IMqttPublishInterceptor>(sp => new TelemetryIngest(
            sp.GetRequiredService<TelemetryPipeline>(), sp.GetRequiredService<EdgeTelemetry>(), sp.GetService<ILogger<TelemetryIngest>>()));
        services.AddSingleton(sp => new SiloHttp(
            sp.GetRequiredService<IOptions<UplinkOptions>>().Value, sp.GetRequiredService<IOptions<EdgePipelineOptions>>().Value.GatewayId));
        services.AddHostedService(sp => new UplinkSender(
            sp.GetRequiredService<SiloHttp>(),
            sp.GetRequiredService<OutboxStore>(),
            sp.GetRequiredService<UplinkWakeup>(),
            sp.GetRequiredService<IOptions<UplinkOptions>>().Value,
            sp.GetRequiredService<EdgeTelemetry>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<UplinkSender>>()));
        services.AddHostedService(sp => new ModelUpdater(
            sp.GetRequiredService<SiloHttp>(),
            sp.GetRequiredService<ModelSlot>(),
            sp.GetRequiredService<IOptions<OtaOptions>>().Value,
            sp.GetRequiredService<IOptions<EdgePipelineOptions>>().Value.DataDirectory,
            sp.GetRequiredService<EdgeTelemetry>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<ILogger<ModelUpdater>>()));
        return services;
    }
}
