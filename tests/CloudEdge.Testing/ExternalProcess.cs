using System.Diagnostics;
using System.Text;

namespace CloudEdge.Testing;

/// <summary>What a finished child process left: its exit code, its stdout as bytes (compared byte for byte by interop tests) and its stderr.</summary>
public sealed record ProcessResult(int ExitCode, byte[] Stdout, string Stderr)
{
    public string StdoutText => Encoding.UTF8.GetString(Stdout);

    public void Deconstruct(out int exitCode, out byte[] stdout, out string stderr)
    {
        exitCode = ExitCode;
        stdout = Stdout;
        stderr = Stderr;
    }
}

/// <summary>
/// A child process of a test (mosquitto, mosquitto_pub, node, our own hosts): stdin closed, stdout and
/// stderr captured, killed with its children when disposed or when it outlives its timeout.
/// </summary>
public sealed class ExternalProcess : IDisposable
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);
    private readonly Process process;
    private readonly MemoryStream stdout = new();
    private readonly Task stdoutPump;
    private readonly Task<string> stderr;

    private ExternalProcess(Process process)
    {
        this.process = process;
        stdoutPump = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        stderr = process.StandardError.ReadToEndAsync();
    }

    public int Id => process.Id;

    public bool HasExited => process.HasExited;

    public static ExternalProcess Start(string fileName, IEnumerable<string> arguments, string? workingDirectory = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        if (environment is not null)
        {
            foreach (var (name, value) in environment)
            {
                info.Environment[name] = value;
            }
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        process.StandardInput.Close();
        return new ExternalProcess(process);
    }

    public static async Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan? timeout = null, string? workingDirectory = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        using var process = Start(fileName, arguments, workingDirectory, environment);
        return await process.WaitAsync(timeout);
    }

    /// <summary>Waits for the exit; past <paramref name="timeout"/> (60 s by default) kills the process and throws with its output.</summary>
    public async Task<ProcessResult> WaitAsync(TimeSpan? timeout = null)
    {
        using var expiry = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            await process.WaitForExitAsync(expiry.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            await stdoutPump;
            throw new TimeoutException(
                $"{process.StartInfo.FileName} {string.Join(' ', process.StartInfo.ArgumentList)} did not exit within {timeout ?? DefaultTimeout}.\n" +
                $"stdout:\n{Encoding.UTF8.GetString(stdout.ToArray())}\nstderr:\n{await stderr}");
        }

        await stdoutPump;
        return new ProcessResult(process.ExitCode, stdout.ToArray(), await stderr);
    }

    public void Kill()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }
    }

    public void Dispose()
    {
        Kill();
        process.Dispose();
    }
}
