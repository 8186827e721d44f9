using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using CloudEdge.Onnx.Native;

namespace CloudEdge.Onnx;

/// <summary>ONNX Runtime's logging severity for messages it writes to standard error.</summary>
public enum OnnxLogLevel
{
    Verbose = 0,
    Info = 1,
    Warning = 2,
    Error = 3,
    Fatal = 4,
}

/// <summary>
/// Where ONNX Runtime comes from and how loud it is. ONNX Runtime keeps one environment per process: while one
/// exists, a second <see cref="OrtEnvironment.Create"/> shares it, and the first one's log settings stay.
/// </summary>
public sealed class OrtEnvironmentOptions
{
    /// <summary>
    /// Full path of libonnxruntime.so.1. When null: the CLOUDEDGE_ONNXRUNTIME_PATH environment variable, then the
    /// application's runtimes/&lt;rid&gt;/native/ folder, then the application folder.
    /// </summary>
    public string? LibraryPath { get; set; }

    public OnnxLogLevel LogLevel { get; set; } = OnnxLogLevel.Error;

    public string LogId { get; set; } = "CloudEdge.Onnx";
}

/// <summary>How a session runs its graph.</summary>
public sealed class InferenceSessionOptions
{
    /// <summary>Threads one Run uses inside an operator. 1 (the default) keeps each Run on its caller's thread,
    /// which suits an edge device where concurrency comes from many callers.</summary>
    public int IntraOpThreads { get; set; } = 1;

    /// <summary>Threads for running independent graph branches in parallel; 1 runs them in sequence.</summary>
    public int InterOpThreads { get; set; } = 1;
}

/// <summary>
/// The ONNX Runtime library, loaded, with its <c>OrtEnv</c>. Create one per process (ONNX Runtime shares a
/// single environment anyway) and open sessions from it; sessions keep it alive after it is disposed.
/// </summary>
public sealed unsafe class OrtEnvironment : IDisposable
{
    internal static readonly ActivitySource ActivitySource = new("CloudEdge.Onnx");

    private readonly OrtHandle _env;
    private int _disposed;

    private OrtEnvironment(OrtLibrary library, OrtHandle env)
    {
        Library = library;
        _env = env;
    }

    /// <summary>The ONNX Runtime version string, e.g. "1.23.0".</summary>
    public string RuntimeVersion => Library.Version;

    /// <summary>The shared library in use.</summary>
    public string LibraryPath => Library.Path;

    internal OrtLibrary Library { get; }

    internal OrtApi Api => Library.Api;

    internal OrtHandle Handle => _env;

    public static OrtEnvironment Create(OrtEnvironmentOptions? options = null)
    {
        options ??= new OrtEnvironmentOptions();
        if (!Enum.IsDefined(options.LogLevel)) throw new ArgumentOutOfRangeException(nameof(options), $"Unknown log level {options.LogLevel}.");
        var library = OrtLibrary.Load(options.LibraryPath);
        var api = library.Api;
        var env = new OrtHandle(api.ReleaseEnv);
        var logId = Encoding.UTF8.GetBytes(options.LogId + "\0");
        nint created;
        fixed (byte* id = logId)
        {
            api.Check(api.CreateEnv((int)options.LogLevel, id, &created));
        }
        env.Own(created);
        return new OrtEnvironment(library, env);
    }

    /// <summary>Opens a model file.</summary>
    public InferenceSession OpenSession(string modelPath, InferenceSessionOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        using var activity = ActivitySource.StartActivity("onnx.session.open");
        activity?.SetTag("onnx.model.path", modelPath);
        return InferenceSession.Open(this, options ?? new InferenceSessionOptions(), Path.GetFullPath(modelPath), default);
    }

    /// <summary>Opens a model from its serialized bytes (e.g. a model received over the air, before it is stored).</summary>
    public InferenceSession OpenSession(ReadOnlySpan<byte> model, InferenceSessionOptions? options = null)
    {
        if (model.IsEmpty) throw new ArgumentException("The model is empty.", nameof(model));
        using var activity = ActivitySource.StartActivity("onnx.session.open");
        activity?.SetTag("onnx.model.bytes", model.Length);
        return InferenceSession.Open(this, options ?? new InferenceSessionOptions(), null, model);
    }

    /// <summary>Refuses new sessions; the native environment lives on until the last session is released.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) _env.Dispose();
    }

    internal void Enter(ref bool added)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        _env.DangerousAddRef(ref added);
    }

    /// <summary>Creates a CPU memory description; tensors over managed memory are created against it.</summary>
    internal OrtHandle CreateCpuMemoryInfo()
    {
        var info = new OrtHandle(Api.ReleaseMemoryInfo);
        nint created;
        // OrtArenaAllocator = 1, OrtMemTypeDefault = 0: plain CPU memory, as ONNX Runtime's own CPU tensors.
        Api.Check(Api.CreateCpuMemoryInfo(1, 0, &created));
        info.Own(created);
        return info;
    }

    internal static string? ReadUtf8(byte* text) => Marshal.PtrToStringUTF8((nint)text);
}
