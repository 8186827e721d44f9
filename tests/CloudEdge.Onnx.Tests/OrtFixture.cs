namespace CloudEdge.Onnx.Tests;

/// <summary>One ONNX Runtime environment for the whole test assembly, as in a real process.</summary>
public sealed class OrtFixture : IDisposable
{
    // Fatal only: tests provoke errors on purpose, and ONNX Runtime would also print each to stderr.
    public OrtEnvironment Environment { get; } = OrtEnvironment.Create(new OrtEnvironmentOptions { LogLevel = OnnxLogLevel.Fatal });

    public void Dispose() => Environment.Dispose();
}

[CollectionDefinition(Name)]
public sealed class OrtCollection : ICollectionFixture<OrtFixture>
{
    public const string Name = "ONNX Runtime";
}
