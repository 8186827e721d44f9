using System.Runtime.InteropServices;
using CloudEdge.Onnx.Native;

namespace CloudEdge.Onnx.Tests;

public sealed class LibraryTests
{
    [Fact]
    public void Missing_configured_library_says_how_to_get_it()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"cloudedge-{Guid.NewGuid():N}", "libonnxruntime.so.1");
        var e = Assert.Throws<OnnxRuntimeLibraryException>(() => OrtEnvironment.Create(new OrtEnvironmentOptions { LibraryPath = missing }));
        Assert.Equal([missing], e.SearchedPaths);
        Assert.Contains(missing, e.Message);
        Assert.Contains("tools/fetch-onnxruntime.sh", e.Message);
        Assert.Contains("CLOUDEDGE_ONNXRUNTIME_PATH", e.Message);
    }

    [Fact]
    public void Missing_library_in_the_application_folder_lists_where_it_looked()
    {
        var empty = Directory.CreateTempSubdirectory("cloudedge-app-").FullName;
        try
        {
            var e = Assert.Throws<OnnxRuntimeLibraryException>(() => OrtLibrary.Resolve(null, null, empty, Architecture.Arm64));
            Assert.Equal(
                [Path.Combine(empty, "runtimes", "linux-arm64", "native", "libonnxruntime.so.1"), Path.Combine(empty, "libonnxruntime.so.1")],
                e.SearchedPaths);
            Assert.Contains("tools/fetch-onnxruntime.sh", e.Message);
        }
        finally
        {
            Directory.Delete(empty, recursive: true);
        }
    }

    [Fact]
    public void Environment_variable_wins_over_the_application_folder_and_must_exist()
    {
        var app = AppContext.BaseDirectory;
        var bundled = Path.Combine(app, "runtimes", "linux-x64", "native", "libonnxruntime.so.1");
        var elsewhere = Directory.CreateTempSubdirectory("cloudedge-ort-").FullName;
        try
        {
            var copy = Path.Combine(elsewhere, "libonnxruntime.so.1");
            File.Copy(bundled, copy);
            Assert.Equal(copy, OrtLibrary.Resolve(null, copy, app, Architecture.X64));
            Assert.Equal(bundled, OrtLibrary.Resolve(null, null, app, Architecture.X64));
            Assert.Equal(copy, OrtLibrary.Resolve(copy, "/elsewhere/ignored", app, Architecture.X64));
            var e = Assert.Throws<OnnxRuntimeLibraryException>(() => OrtLibrary.Resolve(null, Path.Combine(elsewhere, "none.so"), app, Architecture.X64));
            Assert.Contains("CLOUDEDGE_ONNXRUNTIME_PATH environment variable", e.Message);
        }
        finally
        {
            Directory.Delete(elsewhere, recursive: true);
        }
    }

    [Fact]
    public void A_file_that_is_not_the_runtime_is_refused_clearly()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cloudedge-notalib-{Guid.NewGuid():N}.so");
        File.WriteAllText(path, "not a shared library");
        try
        {
            var e = Assert.Throws<OnnxRuntimeLibraryException>(() => OrtEnvironment.Create(new OrtEnvironmentOptions { LibraryPath = path }));
            Assert.Contains(path, e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("linux-x64", 62)]    // EM_X86_64
    [InlineData("linux-arm64", 183)] // EM_AARCH64
    public void Build_output_carries_the_runtime_for_both_architectures(string rid, int machine)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native", "libonnxruntime.so.1");
        Assert.True(File.Exists(path), $"{path} is missing: the CloudEdge.Onnx build should have copied it");
        Span<byte> header = stackalloc byte[20];
        using (var f = File.OpenRead(path)) f.ReadExactly(header);
        Assert.True(header[..4].SequenceEqual("\u007fELF"u8), "not an ELF file");
        Assert.Equal(2, header[4]); // 64-bit
        Assert.Equal(machine, BitConverter.ToUInt16(header[18..20]));
    }
}
