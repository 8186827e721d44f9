using Microsoft.ML.OnnxRuntime;

namespace CloudEdge.EdgePipeline.Inference;

/// <summary>
/// One fixed batch size of a float32 [rows, features] → [rows, outputs] model, bound once: input and output live in
/// arrays on the pinned heap, wrapped by <see cref="OrtValue"/>s that ONNX Runtime reads and writes in place, and
/// bound to the session with an <see cref="OrtIoBinding"/>. <see cref="Run"/> then allocates nothing managed.
/// Serves one thread at a time.
/// </summary>
internal sealed class BoundBatch : IDisposable
{
    private readonly InferenceSession _session;
    private readonly float[] _input;
    private readonly float[] _output;
    private readonly OrtValue _inputValue;
    private readonly OrtValue _outputValue;
    private readonly OrtIoBinding _binding;
    private readonly RunOptions _runOptions = new();
    private bool _disposed;

    public BoundBatch(InferenceSession session, string inputName, string outputName, int rows, int features, int outputs)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        _session = session;
        Rows = rows;
        _input = GC.AllocateArray<float>(rows * features, pinned: true);
        _output = GC.AllocateArray<float>(rows * outputs, pinned: true);
        _inputValue = OrtValue.CreateTensorValueFromMemory(_input, [rows, features]);
        _outputValue = OrtValue.CreateTensorValueFromMemory(_output, [rows, outputs]);
        _binding = session.CreateIoBinding();
        _binding.BindInput(inputName, _inputValue);
        _binding.BindOutput(outputName, _outputValue);
    }

    public int Rows { get; }

    public Span<float> Input => _input;

    public ReadOnlySpan<float> Output => _output;

    /// <summary>The pinned arrays themselves, for a benchmark baseline that drives the C API over the same memory.</summary>
    internal float[] InputBuffer => _input;
    internal float[] OutputBuffer => _output;

    /// <summary>Throws <see cref="ObjectDisposedException"/> once disposed: ONNX Runtime itself would run on freed memory.</summary>
    public void Run()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _session.RunWithBinding(_runOptions, _binding);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _binding.Dispose();
        _runOptions.Dispose();
        _inputValue.Dispose();
        _outputValue.Dispose();
    }
}
