using CloudEdge.Runtime.Reminders;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CloudEdge.Runtime.Hosting;

/// <summary>Starts the silo with the host and shuts it down gracefully when the host stops.</summary>
internal sealed class SiloHostedService(SiloRuntime runtime, IServiceProvider services) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        runtime.Start();
        if (services.GetService<ReminderService>() is { } reminders)
        {
            await reminders.StartAsync(cancellationToken);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        services.GetService<ReminderService>()?.Stop();
        await runtime.StopAsync(cancellationToken);
    }
}
