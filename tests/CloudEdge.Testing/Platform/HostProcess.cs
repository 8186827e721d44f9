using System.Diagnostics;
using System.Text;

namespace CloudEdge.Testing.Platform;

/// <summary>
/// A long-running host of ours (the Silo, the edge agent, the simulator) run as <c>dotnet its.dll</c>: stdin
/// closed, stdout and stderr kept (the last lines in memory for failure messages, all of it in a log file),
/// stopped gracefully with SIGTERM or killed the way a crash or power loss would.
/// </summary>
public sealed class HostProcess : IAsyncDisposable
{
    private const int KeptLines = 400;
    private readonly Process process;
    private readonly Queue<string> lastLines = new();
    private readonly StreamWriter? log;
    private readonly Lock gate = new();
    private bool disposed;

    private HostProcess(string name, Process process, string? logFile)
    {
        Name = name;
        this.process = process;
        LogFile = logFile;
        if (logFile is not null)
        {
            log = new StreamWriter(logFile, append: true, Encoding.UTF8) { AutoFlush = true };
        }

        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Name { get; }

    public int Id => process.Id;

    public bool HasExited => process.HasExited;

    public int ExitCode => process.ExitCode;

    /// <summary>Everything the process wrote, appended across restarts when the same file is given.</summary>
    public string? LogFile { get; }

    /// <summary>The last lines the process wrote (stdout and stderr interleaved), for failure messages.</summary>
    public string Output
    {
        get
        {
            lock (gate)
            {
                return string.Join('\n', lastLines);
            }
        }
    }

    /// <summary>Starts <c>dotnet {dll} {arguments}</c> with the given environment (null removes a variable).</summary>
    public static HostProcess Start(string name, string dll, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment = null, string? logFile = null) =>
        StartCommand(name, ["dotnet", dll], Path.GetDirectoryName(dll)!, arguments, environment, logFile);

    /// <summary>
    /// Starts <paramref name="command"/> (a program and its first arguments, e.g. <c>qemu-aarch64</c> and a published
    /// agent) followed by <paramref name="arguments"/>, in <paramref name="workingDirectory"/>.
    /// </summary>
    public static HostProcess StartCommand(string name, IReadOnlyList<string> command, string workingDirectory, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment = null, string? logFile = null)
    {
        var info = new ProcessStartInfo(command[0])
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in command.Skip(1).Concat(arguments))
        {
            info.ArgumentList.Add(argument);
        }

        // Tests decide about telemetry export themselves: never inherit the developer's collector.
        info.Environment.Remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                info.Environment.Remove(key);
            }
            else
            {
                info.Environment[key] = value;
            }
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {name}.");
        process.StandardInput.Close();
        return new HostProcess(name, process, logFile);
    }

    /// <summary>Waits until <paramref name="ready"/> holds; fails with the process's output if it exits first or the deadline passes.</summary>
    public async Task WaitUntilAsync(Func<Task<bool>> ready, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(120));
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{Name} exited with {process.ExitCode} before {what}.\n{Output}");
            }

            if (await ready())
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{Name}: timed out waiting for {what}.\n{Output}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Waits for the process to exit on its own; past the timeout it is killed and this throws with its output.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var expiry = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(expiry.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"{Name} did not exit within {timeout}.\n{Output}");
        }

        process.WaitForExit(); // drains the redirected output
        return process.ExitCode;
    }

    /// <summary>Sends a signal (SIGTERM: the generic host's graceful stop; SIGINT: Ctrl-C) and waits for the exit.</summary>
    public async Task<int> StopAsync(string signal = "TERM", TimeSpan? timeout = null)
    {
        if (!process.HasExited)
        {
            var result = await ExternalProcess.RunAsync("kill", [$"-{signal}", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(10));
            if (result.ExitCode != 0 && !process.HasExited)
            {
                throw new InvalidOperationException($"kill -{signal} {process.Id} failed: {result.Stderr}");
            }
        }

        return await WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(60));
    }

    /// <summary>SIGKILL with no warning: what a crash or a power cut looks like to the process.</summary>
    public void Kill()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        process.Dispose();
        lock (gate)
        {
            disposed = true;
            log?.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (gate)
        {
            if (disposed)
            {
                return;
            }

            lastLines.Enqueue(line);
            if (lastLines.Count > KeptLines)
            {
                lastLines.Dequeue();
            }

            log?.WriteLine(line);
        }
    }
}
