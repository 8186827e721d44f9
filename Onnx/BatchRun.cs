using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CloudEdge.Onnx.Native;

namespace CloudEdge.Onnx;

/// <summary>
/// Input and output buffers bound once to a session at fixed shapes, for the hot path: fill
/// <see cref="Input{T}(int)"/>, call <see cref="Run"/>, read <see cref="Output{T}(int)"/>. The buffers live on
/// the pinned object heap and ONNX Runtime reads and writes them in place, so a run allocates nothing. To score
/// fewer rows than the batch size, leave the spare rows as they are and ignore their outputs.
/// One instance serves one thread at a time; create one per worker.
/// </summary>
public sealed unsafe class BatchRun : IDisposable
{
    private readonly InferenceSession _session;
    private readonly OrtApi _api;
    private readonly Array[] _inputs;
    private readonly Array[] _outputs;
    private readonly long[][] _inputShapes;
    private readonly long[][] _outputShapes;
    private readonly OrtHandle[] _values;
    private readonly nint[] _inputPointers;
    private readonly nint[] _outputPointers;

    internal BatchRun(InferenceSession session, long[][] inputShapes, long[][] outputShapes)
    {
        _session = session;
        _api = session.Api;
        _inputShapes = inputShapes;
        _outputShapes = outputShapes;
        _inputs = new Array[inputShapes.Length];
        _outputs = new Array[outputShapes.Length];
        _values = new OrtHandle[inputShapes.Length + outputShapes.Length];
        _inputPointers = GC.AllocateArray<nint>(inputShapes.Length, pinned: true);
        _outputPointers = GC.AllocateArray<nint>(outputShapes.Length, pinned: true);
        try
        {
            for (var i = 0; i < inputShapes.Length; i++)
            {
                (_inputs[i], _inputPointers[i]) = Bind(session.Inputs[i], inputShapes[i], i);
            }
            for (var i = 0; i < outputShapes.Length; i++)
            {
                (_outputs[i], _outputPointers[i]) = Bind(session.Outputs[i], outputShapes[i], inputShapes.Length + i);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public IReadOnlyList<long> InputShape(int index) => _inputShapes[index];

    public IReadOnlyList<long> OutputShape(int index) => _outputShapes[index];

    /// <summary>The buffer of input <paramref name="index"/> (in <see cref="InferenceSession.Inputs"/> order), row-major.</summary>
    public Span<T> Input<T>(int index) where T : unmanaged => Buffer<T>(_inputs, index, "Input");

    /// <summary>The buffer of output <paramref name="index"/>, valid after <see cref="Run"/> until the next one.</summary>
    public ReadOnlySpan<T> Output<T>(int index) where T : unmanaged => Buffer<T>(_outputs, index, "Output");

    /// <summary>Runs the model over the bound buffers.</summary>
    public void Run()
    {
        var session = _session.Handle;
        var sessionAdded = false;
        var held = 0;
        var started = InferenceSession.StartRun();
        try
        {
            _session.Enter(ref sessionAdded);
            for (; held < _values.Length; held++)
            {
                var added = false;
                _values[held].DangerousAddRef(ref added);
            }
            fixed (nint* inputs = _inputPointers)
            fixed (nint* outputs = _outputPointers)
            {
                _api.Check(_api.Run(session.DangerousGetHandle(), 0, _session.InputNames, inputs, (nuint)_inputPointers.Length,
                    _session.OutputNames, (nuint)_outputPointers.Length, outputs));
            }
            InferenceSession.RecordRun(started);
        }
        finally
        {
            for (var i = 0; i < held; i++) _values[i].DangerousRelease();
            if (sessionAdded) session.DangerousRelease();
        }
        GC.KeepAlive(this);
    }

    public void Dispose()
    {
        foreach (var value in _values) value?.Dispose();
    }

    private (Array Buffer, nint Value) Bind(NodeMetadata node, long[] shape, int slot)
    {
        if (!node.IsTensor) throw new NotSupportedException($"'{node.Name}' is not a tensor; CloudEdge.Onnx binds tensors only.");
        if (!TensorElementTypes.IsSupported(node.ElementType)) throw TensorElementTypes.Unsupported(node.ElementType, $"'{node.Name}'");
        if (shape.Length != node.Shape.Count)
        {
            throw new ArgumentException($"'{node.Name}' has rank {node.Shape.Count}; the shape given is [{string.Join(", ", shape)}].");
        }
        long count = 1;
        for (var d = 0; d < shape.Length; d++)
        {
            if (shape[d] < 0 || (node.Shape[d] >= 0 && node.Shape[d] != shape[d]))
            {
                throw new ArgumentException($"Shape [{string.Join(", ", shape)}] does not fit '{node}'.");
            }
            count = checked(count * shape[d]);
        }
        var buffer = TensorElementTypes.Allocate(node.ElementType, count, pinned: true);
        var bytes = (nuint)(count * TensorElementTypes.SizeOf(node.ElementType));
        // The value holds the session: the session (and its memory description) outlives every bound value.
        var value = new OrtHandle(_api.ReleaseValue, _session.Handle);
        _values[slot] = value;
        nint created;
        fixed (long* dims = shape)
        {
            _api.Check(_api.CreateTensorWithDataAsOrtValue(_session.MemoryInfo,
                Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer)), bytes, dims, (nuint)shape.Length,
                (int)node.ElementType, &created));
        }
        value.Own(created);
        return (buffer, created);
    }

    private static Span<T> Buffer<T>(Array[] buffers, int index, string kind) where T : unmanaged
    {
        if ((uint)index >= (uint)buffers.Length) throw new ArgumentOutOfRangeException(nameof(index), $"{kind} {index} does not exist.");
        return buffers[index] as T[] is { } typed
            ? typed
            : throw new InvalidOperationException($"{kind} {index} holds {buffers[index].GetType().GetElementType()!.Name} elements, not {typeof(T).Name}.");
    }
}
