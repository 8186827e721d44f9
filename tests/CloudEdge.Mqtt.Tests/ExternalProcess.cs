using System.Diagnostics;
using System.Text;

namespace CloudEdge.Mqtt.Tests;

/// <summary>A child process (mosquitto_pub, mosquitto_sub, node) with its output captured as bytes.</summary>
internal sealed class ExternalProcess : IDisposable
{
    private readonly Process _process;
    private readonly MemoryStream _stdout = new();
    private readonly Task _stdoutPump;
    private readonly Task<string> _stderr;

    private ExternalProcess(Process process)
    {
        _process = process;
        _stdoutPump = process.StandardOutput.BaseStream.CopyToAsync(_stdout);
        _stderr = process.StandardError.ReadToEndAsync();
    }

    public int Id => _process.Id;

    public static ExternalProcess Start(string fileName, IEnumerable<string> arguments, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        return new ExternalProcess(process);
    }

    public static async Task<(int ExitCode, byte[] Stdout, string Stderr)> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan? timeout = null, string? workingDirectory = null)
    {
        using var process = Start(fileName, arguments, workingDirectory);
        return await process.WaitAsync(timeout);
    }

    public async Task<(int ExitCode, byte[] Stdout, string Stderr)> WaitAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
            await _stdoutPump;
            throw new TimeoutException($"{_process.StartInfo.FileName} did not exit. stdout: {Encoding.UTF8.GetString(_stdout.ToArray())} stderr: {await _stderr}");
        }
        await _stdoutPump;
        return (_process.ExitCode, _stdout.ToArray(), await _stderr);
    }

    public void Kill()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
