using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using System.Diagnostics.Metrics;

namespace CloudEdge.Mqtt.Broker;

public static class MqttBrokerServiceCollectionExtensions
{
    /// <summary>Registers the broker (a singleton), its telemetry and the hosted service that starts and stops it.</summary>
    public static IServiceCollection AddMqttBroker(this IServiceCollection services, Action<MqttBrokerOptions>? configure = null)
    {
        services.AddOptions<MqttBrokerOptions>();
        if (configure is not null) services.Configure(configure);
        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new MqttBrokerTelemetry(sp.GetService<IMeterFactory>()));
        services.TryAddSingleton(sp => new MqttBroker(
            sp.GetRequiredService<IOptions<MqttBrokerOptions>>(),
            sp.GetRequiredService<MqttBrokerTelemetry>(),
            sp.GetServices<IMqttPublishInterceptor>(),
            sp.GetService<ILogger<MqttBroker>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<IMqttBrokerStore>()));
        services.AddHostedService<MqttBrokerHostedService>();
        return services;
    }

    /// <summary>Serves MQTT on this Kestrel endpoint (after <c>UseHttps</c> for MQTT over TLS).</summary>
    public static ListenOptions UseMqtt(this ListenOptions listenOptions)
    {
        listenOptions.UseConnectionHandler<MqttConnectionHandler>();
        return listenOptions;
    }
}

/// <summary>Loads stored sessions and starts the broker's timers; on shutdown disconnects clients before Kestrel stops (StoppingAsync runs first).</summary>
internal sealed class MqttBrokerHostedService(MqttBroker broker) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => broker.StartAsync(cancellationToken);

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => broker.StopAsync();

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
