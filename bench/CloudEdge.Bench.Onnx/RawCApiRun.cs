using System.Runtime.InteropServices;
using System.Text;
using CloudEdge.Onnx;
using CloudEdge.Onnx.Native;

namespace CloudEdge.Bench.Onnx;

/// <summary>
/// The baseline: ONNX Runtime driven through the C API function table with raw pointers only, the way a C
/// caller would, with no safe handles, no checks and no managed objects on the run path. It shares only the
/// loaded library (and so the process-wide OrtEnv) with the binding under test.
/// </summary>
internal sealed unsafe class RawCApiRun : IDisposable
{
    private readonly OrtApi _api;
    private readonly nint _env;
    private readonly nint _options;
    private readonly nint _session;
    private readonly nint _memoryInfo;
    private readonly float* _input;
    private readonly float* _output;
    private readonly int _rows;
    private readonly int _features;
    private nint _inputValue;
    private nint _outputValue;
    private readonly byte* _inputName;
    private readonly byte* _outputName;

    public RawCApiRun(string modelPath, int rows, int features)
    {
        _api = OrtLibrary.Load(null).Api;
        _rows = rows;
        _features = features;
        nint p;
        fixed (byte* id = "bench\0"u8) Must(_api.CreateEnv(3, id, &p));
        _env = p;
        Must(_api.CreateSessionOptions(&p));
        _options = p;
        Must(_api.SetIntraOpNumThreads(_options, 1));
        Must(_api.SetInterOpNumThreads(_options, 1));
        Must(_api.SetSessionGraphOptimizationLevel(_options, 99));
        fixed (byte* path = Encoding.UTF8.GetBytes(modelPath + "\0")) Must(_api.CreateSession(_env, path, _options, &p));
        _session = p;
        Must(_api.CreateCpuMemoryInfo(1, 0, &p));
        _memoryInfo = p;

        _input = (float*)NativeMemory.AlignedAlloc((nuint)(rows * features * sizeof(float)), 64);
        _output = (float*)NativeMemory.AlignedAlloc((nuint)(rows * sizeof(float)), 64);
        var inShape = stackalloc long[] { rows, features };
        var outShape = stackalloc long[] { rows, 1 };
        nint value;
        Must(_api.CreateTensorWithDataAsOrtValue(_memoryInfo, _input, (nuint)(rows * features * sizeof(float)), inShape, 2, (int)TensorElementType.Float, &value));
        _inputValue = value;
        Must(_api.CreateTensorWithDataAsOrtValue(_memoryInfo, _output, (nuint)(rows * sizeof(float)), outShape, 2, (int)TensorElementType.Float, &value));
        _outputValue = value;
        _inputName = (byte*)Marshal.StringToCoTaskMemUTF8("features");
        _outputName = (byte*)Marshal.StringToCoTaskMemUTF8("score");
    }

    public Span<float> Input => new(_input, _rows * _features);

    public ReadOnlySpan<float> Output => new(_output, _rows);

    public void Run()
    {
        var inputName = _inputName;
        var outputName = _outputName;
        var input = _inputValue;
        var output = _outputValue;
        var status = _api.Run(_session, 0, &inputName, &input, 1, &outputName, 1, &output);
        if (status != 0) Must(status);
    }

    /// <summary>
    /// The C API sequence behind a run that takes and returns arrays: an input value created over the caller's
    /// buffer, the output allocated by ONNX Runtime, its shape read, its data copied out, both values released.
    /// </summary>
    public float[] RunCopying()
    {
        var inputName = _inputName;
        var outputName = _outputName;
        var shape = stackalloc long[] { _rows, _features };
        nint input;
        var status = _api.CreateTensorWithDataAsOrtValue(_memoryInfo, _input, (nuint)(_rows * _features * sizeof(float)), shape, 2, (int)TensorElementType.Float, &input);
        if (status != 0) Must(status);
        nint output = 0;
        status = _api.Run(_session, 0, &inputName, &input, 1, &outputName, 1, &output);
        if (status != 0) Must(status);
        nint info;
        status = _api.GetTensorTypeAndShape(output, &info);
        if (status != 0) Must(status);
        int elementType;
        nuint rank;
        var dims = stackalloc long[8];
        _api.GetTensorElementType(info, &elementType);
        _api.GetDimensionsCount(info, &rank);
        _api.GetDimensions(info, dims, rank);
        _api.ReleaseTensorTypeAndShapeInfo(info);
        long count = 1;
        for (nuint d = 0; d < rank; d++) count *= dims[d];
        void* data;
        _api.GetTensorMutableData(output, &data);
        var result = new float[count];
        new ReadOnlySpan<float>(data, (int)count).CopyTo(result);
        _api.ReleaseValue(output);
        _api.ReleaseValue(input);
        return result;
    }

    public void Dispose()
    {
        _api.ReleaseValue(_inputValue);
        _api.ReleaseValue(_outputValue);
        _api.ReleaseMemoryInfo(_memoryInfo);
        _api.ReleaseSession(_session);
        _api.ReleaseSessionOptions(_options);
        _api.ReleaseEnv(_env);
        NativeMemory.AlignedFree(_input);
        NativeMemory.AlignedFree(_output);
        Marshal.FreeCoTaskMem((nint)_inputName);
        Marshal.FreeCoTaskMem((nint)_outputName);
        _inputValue = 0;
        _outputValue = 0;
    }

    private void Must(nint status) => _api.Check(status);
}
