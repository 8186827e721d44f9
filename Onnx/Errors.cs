namespace CloudEdge.Onnx;

/// <summary>ONNX Runtime's <c>OrtErrorCode</c>, as carried by every failed C API call.</summary>
public enum OnnxErrorCode
{
    Ok = 0,
    Fail = 1,
    InvalidArgument = 2,
    NoSuchFile = 3,
    NoModel = 4,
    EngineError = 5,
    RuntimeException = 6,
    InvalidProtobuf = 7,
    ModelLoaded = 8,
    NotImplemented = 9,
    InvalidGraph = 10,
    ExecutionProviderFail = 11,
    ModelLoadCanceled = 12,
    ModelRequiresCompilation = 13,
    NotFound = 14,
}

/// <summary>A call into ONNX Runtime failed: <see cref="ErrorCode"/> and the message are ONNX Runtime's own.</summary>
public sealed class OnnxRuntimeException : Exception
{
    internal OnnxRuntimeException(OnnxErrorCode errorCode, string message)
        : base($"[ONNX Runtime {errorCode}] {message}")
    {
        ErrorCode = errorCode;
        RuntimeMessage = message;
    }

    public OnnxErrorCode ErrorCode { get; }

    /// <summary>The message exactly as ONNX Runtime reported it.</summary>
    public string RuntimeMessage { get; }
}

/// <summary>The ONNX Runtime shared library could not be found, loaded or used.</summary>
public sealed class OnnxRuntimeLibraryException : Exception
{
    internal OnnxRuntimeLibraryException(string message, Exception? inner = null) : base(message, inner)
    {
        SearchedPaths = [];
    }

    private OnnxRuntimeLibraryException(string message, IReadOnlyList<string> searchedPaths) : base(message)
    {
        SearchedPaths = searchedPaths;
    }

    /// <summary>Where the library was looked for, in order.</summary>
    public IReadOnlyList<string> SearchedPaths { get; }

    internal static OnnxRuntimeLibraryException NotFound(IReadOnlyList<string> searched, string source) => new(
        $"ONNX Runtime ({Native.OrtLibrary.FileName}, version 1.23.0) was not found via {source}; looked in: " +
        $"{string.Join(", ", searched)}. Get it with tools/fetch-onnxruntime.sh from the CloudEdge repository " +
        "(building CloudEdge.Onnx runs it and copies the library to runtimes/<rid>/native/ of every project that " +
        $"references it), or point the {Native.OrtLibrary.PathVariable} environment variable or " +
        $"{nameof(OrtEnvironmentOptions)}.{nameof(OrtEnvironmentOptions.LibraryPath)} at a libonnxruntime.so.1.",
        searched);
}
