using System.Runtime.InteropServices;

namespace CloudEdge.Bench.Onnx;

/// <summary>
/// The baseline: ONNX Runtime's C API driven by hand, the way a C caller would, from the same libonnxruntime.so the
/// package loaded (<c>OrtGetApiBase</c> by P/Invoke): its own session over the same model bytes and options, and
/// values created once over the same pinned buffers the package's batch uses. <see cref="Run"/> is one
/// <c>OrtApi::Run</c> through the function table with nothing around it. Benchmark-only code.
/// </summary>
internal sealed unsafe partial class RawCApiRun : IDisposable
{
    // Slot indices in struct OrtApi (onnxruntime_c_api.h); the table only ever grows at its end.
    private const int GetErrorMessageSlot = 2, CreateEnvSlot = 3, CreateSessionFromArraySlot = 8, RunSlot = 9, CreateSessionOptionsSlot = 10,
        SetIntraOpNumThreadsSlot = 24, SetInterOpNumThreadsSlot = 25, CreateTensorWithDataAsOrtValueSlot = 49, CreateCpuMemoryInfoSlot = 69,
        ReleaseEnvSlot = 92, ReleaseStatusSlot = 93, ReleaseMemoryInfoSlot = 94, ReleaseSessionSlot = 95, ReleaseValueSlot = 96, ReleaseSessionOptionsSlot = 100;
    private const uint ApiVersion = 23;
    private const int TensorFloat = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct OrtApiBase
    {
        public delegate* unmanaged<uint, nint*> GetApi;
        public delegate* unmanaged<byte*> GetVersionString;
    }

    [LibraryImport("onnxruntime")]
    private static partial OrtApiBase* OrtGetApiBase();

    private readonly nint* _api;
    private readonly nint _env;
    private readonly nint _options;
    private readonly nint _session;
    private readonly nint _memoryInfo;
    private readonly nint _inputValue;
    private readonly nint _outputValue;
    private readonly nint _inputName;
    private readonly nint _outputName;

    /// <param name="input">Pinned: rows x features floats.</param>
    /// <param name="output">Pinned: rows floats.</param>
    public RawCApiRun(byte[] model, float[] input, float[] output, int rows, int features)
    {
        _api = OrtGetApiBase()->GetApi(ApiVersion);
        if (_api is null) throw new InvalidOperationException($"libonnxruntime does not serve C API version {ApiVersion}.");
        Version = Marshal.PtrToStringUTF8((nint)OrtGetApiBase()->GetVersionString()) ?? "?";
        nint p;
        fixed (byte* id = "bench\0"u8) Check(((delegate* unmanaged<int, byte*, nint*, nint>)_api[CreateEnvSlot])(3, id, &p));
        _env = p;
        Check(((delegate* unmanaged<nint*, nint>)_api[CreateSessionOptionsSlot])(&p));
        _options = p;
        Check(((delegate* unmanaged<nint, int, nint>)_api[SetIntraOpNumThreadsSlot])(_options, 1));
        Check(((delegate* unmanaged<nint, int, nint>)_api[SetInterOpNumThreadsSlot])(_options, 1));
        fixed (byte* bytes = model) Check(((delegate* unmanaged<nint, void*, nuint, nint, nint*, nint>)_api[CreateSessionFromArraySlot])(_env, bytes, (nuint)model.Length, _options, &p));
        _session = p;
        Check(((delegate* unmanaged<int, int, nint*, nint>)_api[CreateCpuMemoryInfoSlot])(1, 0, &p));
        _memoryInfo = p;
        var create = (delegate* unmanaged<nint, void*, nuint, long*, nuint, int, nint*, nint>)_api[CreateTensorWithDataAsOrtValueSlot];
        var inShape = stackalloc long[] { rows, features };
        var outShape = stackalloc long[] { rows, 1 };
        Check(create(_memoryInfo, Unsafe(input), (nuint)(rows * features * sizeof(float)), inShape, 2, TensorFloat, &p));
        _inputValue = p;
        Check(create(_memoryInfo, Unsafe(output), (nuint)(rows * sizeof(float)), outShape, 2, TensorFloat, &p));
        _outputValue = p;
        _inputName = Marshal.StringToCoTaskMemUTF8("features");
        _outputName = Marshal.StringToCoTaskMemUTF8("score");
    }

    public string Version { get; }

    public void Run()
    {
        var inputName = _inputName;
        var outputName = _outputName;
        var input = _inputValue;
        var output = _outputValue;
        var status = ((delegate* unmanaged<nint, nint, nint*, nint*, nuint, nint*, nuint, nint*, nint>)_api[RunSlot])(_session, 0, &inputName, &input, 1, &outputName, 1, &output);
        if (status != 0) Check(status);
    }

    public void Dispose()
    {
        ((delegate* unmanaged<nint, void>)_api[ReleaseValueSlot])(_inputValue);
        ((delegate* unmanaged<nint, void>)_api[ReleaseValueSlot])(_outputValue);
        ((delegate* unmanaged<nint, void>)_api[ReleaseMemoryInfoSlot])(_memoryInfo);
        ((delegate* unmanaged<nint, void>)_api[ReleaseSessionSlot])(_session);
        ((delegate* unmanaged<nint, void>)_api[ReleaseSessionOptionsSlot])(_options);
        ((delegate* unmanaged<nint, void>)_api[ReleaseEnvSlot])(_env);
        Marshal.FreeCoTaskMem(_inputName);
        Marshal.FreeCoTaskMem(_outputName);
    }

    // The arrays come from the pinned object heap: their address never changes.
    private static void* Unsafe(float[] pinned) => Marshal.UnsafeAddrOfPinnedArrayElement(pinned, 0).ToPointer();

    private void Check(nint status)
    {
        if (status == 0) return;
        var message = Marshal.PtrToStringUTF8((nint)((delegate* unmanaged<nint, byte*>)_api[GetErrorMessageSlot])(status));
        ((delegate* unmanaged<nint, void>)_api[ReleaseStatusSlot])(status);
        throw new InvalidOperationException($"ONNX Runtime C API: {message}");
    }
}
