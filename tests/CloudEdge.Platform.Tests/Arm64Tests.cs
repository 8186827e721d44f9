namespace CloudEdge.Platform.Tests;

/// <summary>
/// The edge agent is one portable, framework-dependent build for linux-x64 and linux-arm64. Its code is IL; what
/// is architecture-specific is the native libraries the build ships under <c>runtimes/linux-arm64/native/</c>.
/// The agent itself cannot run under emulation here (no arm64 .NET runtime restores on these machines:
/// docs/edge-agent.md, "What is verified on arm64"), so this loads those two libraries in an AArch64 process under
/// Debian's qemu-aarch64, as the .NET host on an arm64 box would.
/// </summary>
public sealed class Arm64Tests
{
    /// <summary>
    /// Loads SQLite and ONNX Runtime from the given paths and prints their versions; ONNX Runtime must serve the C
    /// API version the agent's binding asks for (Onnx/: GetApi(23)). OrtApiBase is the C API's first, stable struct.
    /// </summary>
    private const string Probe = """
        #include <dlfcn.h>
        #include <stdio.h>
        typedef struct { const void* (*GetApi)(unsigned version); const char* (*GetVersionString)(void); } OrtApiBase;
        int main(int argc, char** argv) {
          if (argc != 3) return 2;
          void* sqlite = dlopen(argv[1], RTLD_NOW);
          if (!sqlite) { printf("sqlite load failed: %s\n", dlerror()); return 1; }
          const char* (*sqliteVersion)(void) = (const char* (*)(void))dlsym(sqlite, "sqlite3_libversion");
          if (!sqliteVersion) { printf("sqlite3_libversion missing\n"); return 1; }
          printf("sqlite %s\n", sqliteVersion());
          void* ort = dlopen(argv[2], RTLD_NOW);
          if (!ort) { printf("onnxruntime load failed: %s\n", dlerror()); return 1; }
          const OrtApiBase* (*apiBase)(void) = (const OrtApiBase* (*)(void))dlsym(ort, "OrtGetApiBase");
          if (!apiBase) { printf("OrtGetApiBase missing\n"); return 1; }
          printf("onnxruntime %s, C API 23 %s\n", apiBase()->GetVersionString(), apiBase()->GetApi(23) ? "served" : "refused");
          return 0;
        }
        """;

    [Fact]
    public async Task The_agents_arm64_native_libraries_load_in_an_aarch64_process()
    {
        var native = Path.Combine(Path.GetDirectoryName(EdgeAgentProcess.Dll)!, "runtimes", "linux-arm64", "native");
        var sqlite = Path.Combine(native, "libe_sqlite3.so");
        var onnxRuntime = Path.Combine(native, "libonnxruntime.so.1");
        Assert.True(File.Exists(sqlite), $"{sqlite} is not in the agent's build output");
        Assert.True(File.Exists(onnxRuntime), $"{onnxRuntime} is not in the agent's build output");

        var directory = RepositoryLayout.NewTempDirectory("cloudedge-arm64");
        try
        {
            var source = Path.Combine(directory, "probe.c");
            var probe = Path.Combine(directory, "probe");
            await File.WriteAllTextAsync(source, Probe);
            // libm and libpthread as the .NET host has them loaded (SQLite's build leaves trunc() etc. to the process).
            var compile = await ExternalProcess.RunAsync("aarch64-linux-gnu-gcc", ["-O1", "-o", probe, source, "-Wl,--no-as-needed", "-lm", "-ldl", "-lpthread"], TimeSpan.FromMinutes(2));
            Assert.True(compile.ExitCode == 0, $"aarch64-linux-gnu-gcc: {compile.Stderr}");

            var run = await ExternalProcess.RunAsync("qemu-aarch64", ["-L", "/usr/aarch64-linux-gnu", probe, sqlite, onnxRuntime], TimeSpan.FromMinutes(2));
            var output = run.StdoutText;
            Assert.True(run.ExitCode == 0, $"qemu-aarch64 probe exited with {run.ExitCode}: {output}{run.Stderr}");
            Assert.Contains("sqlite 3.", output);
            Assert.Contains("onnxruntime 1.23.0, C API 23 served", output);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
