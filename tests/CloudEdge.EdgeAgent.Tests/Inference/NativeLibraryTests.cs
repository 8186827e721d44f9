namespace CloudEdge.EdgeAgent.Tests.Inference;

/// <summary>The package's native ONNX Runtime travels with a portable build for both Linux architectures.</summary>
public sealed class NativeLibraryTests
{
    [Theory]
    [InlineData("linux-x64", 62)]    // EM_X86_64
    [InlineData("linux-arm64", 183)] // EM_AARCH64
    public void Build_output_carries_the_runtime_for_both_architectures(string rid, int machine)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native", "libonnxruntime.so");
        Assert.True(File.Exists(path), $"{path} is missing: Microsoft.ML.OnnxRuntime should have copied it");
        Span<byte> header = stackalloc byte[20];
        using (var f = File.OpenRead(path)) f.ReadExactly(header);
        Assert.True(header[..4].SequenceEqual("\u007fELF"u8), "not an ELF file");
        Assert.Equal(2, header[4]); // 64-bit
        Assert.Equal(machine, BitConverter.ToUInt16(header[18..20]));
    }

    [Fact]
    public void The_loaded_runtime_is_the_packages_version()
    {
        Assert.StartsWith("1.32.", Microsoft.ML.OnnxRuntime.OrtEnv.Instance().GetVersionString());
    }
}
