using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.InteropServices;
using System.Text;
using CloudEdge.Onnx.Native;

namespace CloudEdge.Onnx;

/// <summary>
/// A loaded model. <see cref="Run(IReadOnlyList{Tensor})"/> may be called from many threads at once (ONNX
/// Runtime's own guarantee for <c>OrtApi::Run</c>; this type keeps no mutable state of its own). Disposing waits
/// for no one: runs in flight finish, later runs get <see cref="ObjectDisposedException"/>.
/// </summary>
public sealed unsafe class InferenceSession : IDisposable
{
    private static readonly Meter Meter = new("CloudEdge.Onnx");
    private static readonly Histogram<double> RunDuration = Meter.CreateHistogram<double>(
        "cloudedge.onnx.run.duration", unit: "s", description: "Duration of one inference run, batched or not.");

    private readonly OrtHandle _session;
    private readonly OrtApi _api;
    private readonly nint _memoryInfo;
    private readonly byte** _inputNames;
    private readonly byte** _outputNames;
    private readonly NodeMetadata[] _inputs;
    private readonly NodeMetadata[] _outputs;
    private readonly Dictionary<string, int> _inputIndex;
    private int _disposed;

    private InferenceSession(OrtApi api, OrtHandle session, nint memoryInfo, byte** inputNames, byte** outputNames,
        NodeMetadata[] inputs, NodeMetadata[] outputs)
    {
        _api = api;
        _session = session;
        _memoryInfo = memoryInfo;
        _inputNames = inputNames;
        _outputNames = outputNames;
        _inputs = inputs;
        _outputs = outputs;
        Inputs = Array.AsReadOnly(inputs);
        Outputs = Array.AsReadOnly(outputs);
        _inputIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < inputs.Length; i++) _inputIndex[inputs[i].Name] = i;
    }

    public IReadOnlyList<NodeMetadata> Inputs { get; }

    public IReadOnlyList<NodeMetadata> Outputs { get; }

    internal OrtApi Api => _api;

    internal OrtHandle Handle => _session;

    internal nint MemoryInfo => _memoryInfo;

    internal byte** InputNames => _inputNames;

    internal byte** OutputNames => _outputNames;

    /// <summary>Runs the model on one tensor per input, in <see cref="Inputs"/> order; returns every output in
    /// <see cref="Outputs"/> order, in new arrays.</summary>
    public IReadOnlyList<Tensor> Run(IReadOnlyList<Tensor> inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Count != _inputs.Length)
        {
            throw new ArgumentException(
                $"The model has {_inputs.Length} inputs ({string.Join(", ", _inputs.Select(i => i.Name))}); got {inputs.Count} tensors.",
                nameof(inputs));
        }
        var names = stackalloc nint[inputs.Count];
        for (var i = 0; i < inputs.Count; i++) names[i] = (nint)_inputNames[i];
        return RunCore(inputs, (byte**)names);
    }

    /// <summary>Runs the model on the named inputs (inputs the model gives a default for may be left out);
    /// returns every output by name.</summary>
    public IReadOnlyDictionary<string, Tensor> Run(IReadOnlyDictionary<string, Tensor> inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Count > _inputs.Length)
        {
            throw new ArgumentException($"The model has {_inputs.Length} inputs; got {inputs.Count} named tensors.", nameof(inputs));
        }
        var tensors = new Tensor[inputs.Count];
        var names = stackalloc nint[inputs.Count];
        var n = 0;
        foreach (var (name, tensor) in inputs)
        {
            if (!_inputIndex.TryGetValue(name, out var index))
            {
                throw new ArgumentException(
                    $"The model has no input '{name}'; its inputs are {string.Join(", ", _inputs.Select(i => i.Name))}.", nameof(inputs));
            }
            tensors[n] = tensor ?? throw new ArgumentException($"Input '{name}' is null.", nameof(inputs));
            names[n++] = (nint)_inputNames[index];
        }
        var outputs = RunCore(tensors, (byte**)names);
        var byName = new Dictionary<string, Tensor>(outputs.Length, StringComparer.Ordinal);
        for (var i = 0; i < outputs.Length; i++) byName[_outputs[i].Name] = outputs[i];
        return byName;
    }

    /// <summary>
    /// Binds pre-allocated input and output buffers for repeated runs at a fixed batch size: every free (-1)
    /// dimension of every input and output becomes <paramref name="batchSize"/>. Runs through the returned
    /// object allocate nothing.
    /// </summary>
    public BatchRun CreateBatchRun(int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        static long[] Resolve(NodeMetadata node, int batch) => node.Shape.Select(d => d < 0 ? batch : d).ToArray();
        return new BatchRun(this, _inputs.Select(i => Resolve(i, batchSize)).ToArray(), _outputs.Select(o => Resolve(o, batchSize)).ToArray());
    }

    /// <summary>Binds pre-allocated buffers with explicit shapes, one per input and one per output, in order.</summary>
    public BatchRun CreateBatchRun(IReadOnlyList<long[]> inputShapes, IReadOnlyList<long[]> outputShapes)
    {
        ArgumentNullException.ThrowIfNull(inputShapes);
        ArgumentNullException.ThrowIfNull(outputShapes);
        if (inputShapes.Count != _inputs.Length || outputShapes.Count != _outputs.Length)
        {
            throw new ArgumentException(
                $"The model has {_inputs.Length} inputs and {_outputs.Length} outputs; got {inputShapes.Count} input shapes and {outputShapes.Count} output shapes.");
        }
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        static long[] Copy(long[]? shape) => shape?.ToArray() ?? throw new ArgumentException("A shape is null.");
        return new BatchRun(this, inputShapes.Select(Copy).ToArray(), outputShapes.Select(Copy).ToArray());
    }

    /// <summary>
    /// Refuses new runs and releases the native session once runs in flight and batch runs bound to it are done.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) _session.Dispose();
    }

    /// <summary>
    /// Holds the native session for one run. The flag is checked first because a handle that others still
    /// reference (batch runs, runs in flight) stays usable after Dispose; the reference keeps a run that raced
    /// with Dispose safe.
    /// </summary>
    internal void Enter(ref bool added)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        _session.DangerousAddRef(ref added);
    }

    internal static void RecordRun(long startTimestamp)
    {
        if (startTimestamp != 0) RunDuration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds);
    }

    internal static long StartRun() => RunDuration.Enabled ? Stopwatch.GetTimestamp() : 0;

    private Tensor[] RunCore(IReadOnlyList<Tensor> inputs, byte** inputNames)
    {
        var inputCount = inputs.Count;
        var outputCount = _outputs.Length;
        var added = false;
        var pins = inputCount <= 16 ? stackalloc GCHandle[16] : new GCHandle[inputCount];
        var inputPointers = stackalloc nint[inputCount];
        var outputPointers = stackalloc nint[outputCount];
        var started = StartRun();
        using var scope = new RunScope(_api, inputCount + outputCount, outputCount);
        try
        {
            Enter(ref added);
            for (var i = 0; i < inputCount; i++)
            {
                var tensor = inputs[i] ?? throw new ArgumentException($"Input {i} is null.", nameof(inputs));
                pins[i] = GCHandle.Alloc(tensor.Data, GCHandleType.Pinned);
                nint value;
                var bytes = (nuint)((long)tensor.ElementCount * TensorElementTypes.SizeOf(tensor.ElementType));
                var shape = tensor.ShapeArray;
                // ONNX Runtime copies the shape; only the data must stay pinned until the run ends.
                fixed (long* dims = shape)
                {
                    _api.Check(_api.CreateTensorWithDataAsOrtValue(_memoryInfo, (void*)pins[i].AddrOfPinnedObject(), bytes,
                        dims, (nuint)shape.Length, (int)tensor.ElementType, &value));
                }
                scope.OwnValue(value);
                inputPointers[i] = value;
            }
            for (var i = 0; i < outputCount; i++) outputPointers[i] = 0;

            var status = _api.Run(_session.DangerousGetHandle(), 0, inputNames, inputPointers, (nuint)inputCount,
                _outputNames, (nuint)outputCount, outputPointers);
            for (var i = 0; i < outputCount; i++) scope.OwnValue(outputPointers[i]);
            _api.Check(status);

            var results = new Tensor[outputCount];
            for (var i = 0; i < outputCount; i++) results[i] = ReadTensor(outputPointers[i], _outputs[i], scope);
            RecordRun(started);
            return results;
        }
        finally
        {
            for (var i = 0; i < inputCount; i++)
            {
                if (pins[i].IsAllocated) pins[i].Free();
            }
            if (added) _session.DangerousRelease();
        }
    }

    private Tensor ReadTensor(nint value, NodeMetadata output, RunScope scope)
    {
        if (!output.IsTensor)
        {
            throw new NotSupportedException($"Output '{output.Name}' is not a tensor; CloudEdge.Onnx reads tensors only.");
        }
        nint info;
        _api.Check(_api.GetTensorTypeAndShape(value, &info));
        scope.OwnInfo(info);
        int type;
        _api.Check(_api.GetTensorElementType(info, &type));
        var elementType = (TensorElementType)type;
        if (!TensorElementTypes.IsSupported(elementType)) throw TensorElementTypes.Unsupported(elementType, $"Output '{output.Name}'");
        nuint rank;
        _api.Check(_api.GetDimensionsCount(info, &rank));
        var shape = new long[(int)rank];
        fixed (long* dims = shape)
        {
            _api.Check(_api.GetDimensions(info, dims, rank));
        }
        long count = 1;
        foreach (var d in shape) count = checked(count * d);
        var data = TensorElementTypes.Allocate(elementType, count, pinned: false);
        if (count > 0)
        {
            void* source;
            _api.Check(_api.GetTensorMutableData(value, &source));
            var bytes = checked((int)(count * TensorElementTypes.SizeOf(elementType)));
            new ReadOnlySpan<byte>(source, bytes).CopyTo(MemoryMarshal.CreateSpan(ref MemoryMarshal.GetArrayDataReference(data), bytes));
        }
        return Tensor.Wrap(elementType, data, shape);
    }

    internal static InferenceSession Open(OrtEnvironment environment, InferenceSessionOptions options, string? path, ReadOnlySpan<byte> model)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(options.IntraOpThreads, nameof(options.IntraOpThreads));
        ArgumentOutOfRangeException.ThrowIfNegative(options.InterOpThreads, nameof(options.InterOpThreads));
        var api = environment.Api;

        using var sessionOptions = new OrtHandle(api.ReleaseSessionOptions);
        nint created;
        api.Check(api.CreateSessionOptions(&created));
        sessionOptions.Own(created);
        var so = sessionOptions.DangerousGetHandle();
        api.Check(api.SetIntraOpNumThreads(so, options.IntraOpThreads));
        api.Check(api.SetInterOpNumThreads(so, options.InterOpThreads));
        api.Check(api.SetSessionExecutionMode(so, options.InterOpThreads > 1 ? 1 : 0)); // ORT_PARALLEL : ORT_SEQUENTIAL
        api.Check(api.SetSessionGraphOptimizationLevel(so, 99)); // ORT_ENABLE_ALL
        // Pool threads that spin between operators would take the cores an edge device's callers need.
        fixed (byte* intra = "session.intra_op.allow_spinning\0"u8)
        fixed (byte* inter = "session.inter_op.allow_spinning\0"u8)
        fixed (byte* no = "0\0"u8)
        {
            api.Check(api.AddSessionConfigEntry(so, intra, no));
            api.Check(api.AddSessionConfigEntry(so, inter, no));
        }

        var session = new OrtHandle(api.ReleaseSession, environment.Handle);
        var environmentAdded = false;
        try
        {
            environment.Enter(ref environmentAdded);
            nint s;
            if (path is not null)
            {
                var utf8 = Encoding.UTF8.GetBytes(path + "\0");
                fixed (byte* p = utf8) api.Check(api.CreateSession(environment.Handle.DangerousGetHandle(), p, so, &s));
            }
            else
            {
                fixed (byte* p = model) api.Check(api.CreateSessionFromArray(environment.Handle.DangerousGetHandle(), p, (nuint)model.Length, so, &s));
            }
            session.Own(s);

            var inputs = ReadNodes(api, s, input: true);
            var outputs = ReadNodes(api, s, input: false);

            // The session handle keeps the memory description and the name tables alive: runs in flight hold
            // the session, so they hold these too.
            using var memoryInfo = environment.CreateCpuMemoryInfo();
            session.Hold(memoryInfo);
            using var names = BuildNameTable(inputs, outputs, out var inputNames, out var outputNames);
            session.Hold(names);

            return new InferenceSession(api, session, memoryInfo.DangerousGetHandle(), inputNames, outputNames, inputs, outputs);
        }
        catch
        {
            session.Dispose();
            throw;
        }
        finally
        {
            if (environmentAdded) environment.Handle.DangerousRelease();
        }
    }

    private static NodeMetadata[] ReadNodes(OrtApi api, nint session, bool input)
    {
        nuint count;
        api.Check(input ? api.SessionGetInputCount(session, &count) : api.SessionGetOutputCount(session, &count));
        nint allocator;
        api.Check(api.GetAllocatorWithDefaultOptions(&allocator));
        var nodes = new NodeMetadata[(int)count];
        for (nuint i = 0; i < count; i++)
        {
            string text;
            using (var allocation = new OrtAllocation(api, allocator))
            {
                byte* name;
                api.Check(input ? api.SessionGetInputName(session, i, allocator, &name) : api.SessionGetOutputName(session, i, allocator, &name));
                allocation.Own(name);
                text = OrtEnvironment.ReadUtf8(name) ?? "";
            }

            using var typeInfo = new OrtHandle(api.ReleaseTypeInfo);
            nint created;
            api.Check(input ? api.SessionGetInputTypeInfo(session, i, &created) : api.SessionGetOutputTypeInfo(session, i, &created));
            typeInfo.Own(created);
            int onnxType;
            api.Check(api.GetOnnxTypeFromTypeInfo(created, &onnxType));
            if (onnxType != 1) // ONNX_TYPE_TENSOR
            {
                nodes[(int)i] = new NodeMetadata(text, isTensor: false, TensorElementType.Undefined, [], []);
                continue;
            }
            nint tensorInfo; // owned by typeInfo
            api.Check(api.CastTypeInfoToTensorInfo(created, &tensorInfo));
            int elementType;
            api.Check(api.GetTensorElementType(tensorInfo, &elementType));
            nuint rank;
            api.Check(api.GetDimensionsCount(tensorInfo, &rank));
            var shape = new long[(int)rank];
            var symbols = new string[(int)rank];
            var symbolPointers = new nint[(int)rank];
            fixed (long* dims = shape)
            fixed (nint* syms = symbolPointers)
            {
                api.Check(api.GetDimensions(tensorInfo, dims, rank));
                api.Check(api.GetSymbolicDimensions(tensorInfo, (byte**)syms, rank));
            }
            for (var d = 0; d < symbols.Length; d++) symbols[d] = OrtEnvironment.ReadUtf8((byte*)symbolPointers[d]) ?? "";
            nodes[(int)i] = new NodeMetadata(text, isTensor: true, (TensorElementType)elementType, shape, symbols);
        }
        return nodes;
    }

    private static NativeBuffer BuildNameTable(NodeMetadata[] inputs, NodeMetadata[] outputs, out byte** inputNames, out byte** outputNames)
    {
        var all = inputs.Concat(outputs).Select(n => Encoding.UTF8.GetBytes(n.Name)).ToArray();
        var tableBytes = (nuint)(all.Length * sizeof(nint));
        var textBytes = (nuint)all.Sum(b => b.Length + 1);
        var buffer = new NativeBuffer(tableBytes + textBytes);
        var table = (byte**)buffer.Pointer;
        var text = buffer.Pointer + tableBytes;
        for (var i = 0; i < all.Length; i++)
        {
            table[i] = text;
            all[i].CopyTo(new Span<byte>(text, all[i].Length));
            text += all[i].Length + 1; // the buffer is zeroed: each name ends with NUL
        }
        inputNames = table;
        outputNames = table + inputs.Length;
        return buffer;
    }
}
