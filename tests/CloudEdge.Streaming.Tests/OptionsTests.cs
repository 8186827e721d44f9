using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CloudEdge.Streaming.Tests;

public sealed class OptionsTests
{
    [Fact]
    public async Task A_silo_with_invalid_stream_options_refuses_to_start_and_names_each_problem()
    {
        using var host = new HostBuilder()
            .UseOrleans(silo => silo
                .UseLocalhostClustering(siloPort: CloudEdge.Testing.Platform.RepositoryLayout.FreePort(), gatewayPort: CloudEdge.Testing.Platform.RepositoryLayout.FreePort())
                .AddMemoryGrainStorage("PubSubStore")
                .AddPostgresStreams("platform", options =>
                {
                    options.QueueCount = 0;
                    options.RetentionMaxEventsPerStream = 0;
                    options.PollInterval = TimeSpan.Zero;
                }))
            .Build();

        var failure = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains(failure.Failures, f => f.Contains("'platform': ConnectionString is required", StringComparison.Ordinal));
        Assert.Contains(failure.Failures, f => f.Contains("QueueCount must be between 1 and 1024", StringComparison.Ordinal));
        Assert.Contains(failure.Failures, f => f.Contains("RetentionMaxEventsPerStream must be at least 1", StringComparison.Ordinal));
        Assert.Contains(failure.Failures, f => f.Contains("PollInterval must be positive", StringComparison.Ordinal));
    }
}
