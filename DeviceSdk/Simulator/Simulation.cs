using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using CloudEdge.DeviceSdk;
using Spectre.Console;

namespace CloudEdge.Simulator;

/// <summary>Runs every device until the count, the duration or Ctrl-C, shows progress, and reports totals.</summary>
internal sealed class Simulation(SimulatorSettings settings, TextWriter output, TimeProvider time)
{
    public async Task<int> RunAsync(CancellationToken interrupted)
    {
        var errors = settings.Validate().ToList();
        if (errors.Count > 0)
        {
            foreach (var e in errors) await Console.Error.WriteLineAsync(e).ConfigureAwait(false);
            return 2;
        }
        var (ca, clientCertificate) = LoadCertificates();
        // Every reading gets a publish span, so its traceparent reaches the edge even without an exporter here.
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == DeviceSdkTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
        };
        ActivitySource.AddActivityListener(listener);

        var startedAt = time.GetUtcNow();
        var devices = Enumerable.Range(0, settings.Devices).Select(i => new DeviceSimulator(settings, i, ca, clientCertificate, time)).ToList();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(interrupted);
        if (settings.Duration is { } duration) stop.CancelAfter(duration);
        var runs = devices.Select(d => Task.Run(() => d.RunAsync(stop.Token))).ToList();
        var all = Task.WhenAll(runs);

        var mode = settings.Progress == "auto"
            ? (!Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive ? "live" : "plain")
            : settings.Progress;
        if (mode == "live") await ShowLiveAsync(devices, all).ConfigureAwait(false);
        else if (mode == "plain") await ShowPlainAsync(devices, all).ConfigureAwait(false);
        else await all.ConfigureAwait(false);

        await Task.WhenAll(devices.Select(d => d.StopAsync())).ConfigureAwait(false);
        var summary = Summarize(devices, startedAt, interrupted.IsCancellationRequested);
        foreach (var d in devices) await d.DisposeAsync().ConfigureAwait(false);

        PrintTotals(summary, mode == "live");
        if (settings.SummaryFile is { } path)
        {
            var json = JsonSerializer.Serialize(summary, SimulationSummary.Json);
            var temporary = path + ".tmp";
            await File.WriteAllTextAsync(temporary, json, CancellationToken.None).ConfigureAwait(false);
            // Readers polling for the file never see half of it.
            File.Move(temporary, path, overwrite: true);
        }
        var refused = summary.Devices.Count(d => d.ConnectError is not null && d.Sent == 0);
        return refused == summary.Devices.Count ? 1 : 0;
    }

    private (X509Certificate2? Ca, X509Certificate2? Client) LoadCertificates()
    {
        if (!settings.Tls) return (null, null);
        var ca = settings.CaFile is { } caFile ? X509CertificateLoader.LoadCertificateFromFile(caFile) : null;
        X509Certificate2? client = null;
        if (settings.CertFile is { } certFile && settings.KeyFile is { } keyFile)
        {
            using var pem = X509Certificate2.CreateFromPemFile(certFile, keyFile);
            client = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        return (ca, client);
    }

    private SimulationSummary Summarize(List<DeviceSimulator> devices, DateTimeOffset startedAt, bool interrupted)
    {
        var perDevice = devices.Select(d =>
        {
            var stats = d.Statistics;
            return new DeviceSummary(d.DeviceId, d.Kind, SensorKinds.UnitOf(d.Kind), d.Sent, d.Acked, d.Failed, d.LastSeq, stats.Reconnects, stats.Resent, d.ConnectError, d.Anomalies);
        }).ToList();
        var totals = new SimulationTotals(perDevice.Sum(d => d.Sent), perDevice.Sum(d => d.Acked), perDevice.Sum(d => d.Failed));
        return new SimulationSummary(startedAt, time.GetUtcNow(), $"{settings.Host}:{settings.Port}",
            settings.Protocol == MqttProtocolVersion.V500 ? "5.0" : "3.1.1", (int)settings.QoS, interrupted, totals, perDevice);
    }

    private async Task ShowPlainAsync(List<DeviceSimulator> devices, Task all)
    {
        var started = time.GetTimestamp();
        long lastSent = 0;
        var lastAt = started;
        while (await Task.WhenAny(all, Task.Delay(settings.ProgressInterval, time)).ConfigureAwait(false) != all)
        {
            var (sent, acked, failed, connected) = Snapshot(devices);
            var now = time.GetTimestamp();
            var rate = (sent - lastSent) / Math.Max(0.001, time.GetElapsedTime(lastAt, now).TotalSeconds);
            (lastSent, lastAt) = (sent, now);
            await output.WriteLineAsync(
                $"[simulator] t={time.GetElapsedTime(started).TotalSeconds:0.0}s connected={connected}/{devices.Count} sent={sent} acked={acked} failed={failed} rate={rate:0.0}/s").ConfigureAwait(false);
        }
        await all.ConfigureAwait(false);
    }

    private async Task ShowLiveAsync(List<DeviceSimulator> devices, Task all)
    {
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]CloudEdge sensor simulator[/]");
        foreach (var c in new[] { "connected", "sent", "acked", "failed", "rate/s", "elapsed" }) table.AddColumn(new TableColumn(c).RightAligned());
        table.AddRow("", "", "", "", "", "");
        var started = time.GetTimestamp();
        long lastSent = 0;
        var lastAt = started;
        await AnsiConsole.Live(table).StartAsync(async context =>
        {
            while (true)
            {
                var done = await Task.WhenAny(all, Task.Delay(TimeSpan.FromMilliseconds(500), time)).ConfigureAwait(false) == all;
                var (sent, acked, failed, connected) = Snapshot(devices);
                var now = time.GetTimestamp();
                var rate = (sent - lastSent) / Math.Max(0.001, time.GetElapsedTime(lastAt, now).TotalSeconds);
                (lastSent, lastAt) = (sent, now);
                table.UpdateCell(0, 0, $"{connected}/{devices.Count}");
                table.UpdateCell(0, 1, sent.ToString());
                table.UpdateCell(0, 2, $"[green]{acked}[/]");
                table.UpdateCell(0, 3, failed == 0 ? "0" : $"[red]{failed}[/]");
                table.UpdateCell(0, 4, rate.ToString("0.0"));
                table.UpdateCell(0, 5, $"{time.GetElapsedTime(started).TotalSeconds:0}s");
                context.Refresh();
                if (done) break;
            }
        }).ConfigureAwait(false);
        await all.ConfigureAwait(false);
    }

    private static (long Sent, long Acked, long Failed, int Connected) Snapshot(List<DeviceSimulator> devices) =>
        (devices.Sum(d => d.Sent), devices.Sum(d => d.Acked), devices.Sum(d => d.Failed), devices.Count(d => d.IsConnected));

    private void PrintTotals(SimulationSummary summary, bool rich)
    {
        if (rich)
        {
            var table = new Table().Border(TableBorder.Simple);
            foreach (var c in new[] { "device", "kind", "sent", "acked", "failed", "anomalies", "reconnects" }) table.AddColumn(c);
            foreach (var d in summary.Devices)
            {
                table.AddRow(d.DeviceId, d.Kind, d.Sent.ToString(), d.Acked.ToString(), d.Failed.ToString(), d.Anomalies.Count.ToString(), d.Reconnects.ToString());
            }
            table.AddRow("[bold]total[/]", "", summary.Totals.Sent.ToString(), summary.Totals.Acked.ToString(), summary.Totals.Failed.ToString(), "", "");
            AnsiConsole.Write(table);
        }
        else
        {
            foreach (var d in summary.Devices)
            {
                output.WriteLine($"[simulator] device={d.DeviceId} kind={d.Kind} sent={d.Sent} acked={d.Acked} failed={d.Failed} anomalies={d.Anomalies.Count} reconnects={d.Reconnects}{(d.ConnectError is null ? "" : $" error=\"{d.ConnectError}\"")}");
            }
            output.WriteLine($"[simulator] total sent={summary.Totals.Sent} acked={summary.Totals.Acked} failed={summary.Totals.Failed}{(summary.Interrupted ? " (interrupted)" : "")}");
        }
        output.Flush();
    }
}
