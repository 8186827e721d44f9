using System.Runtime.InteropServices;

namespace CloudEdge.Onnx.Native;

/// <summary>
/// Owns the native objects one <see cref="InferenceSession.Run(IReadOnlyList{Tensor})"/> creates (input values
/// over the caller's pinned arrays, output values ONNX Runtime allocates, the shape infos read from them) and
/// releases them together when the run ends. One safe handle per run rather than one per object: creating a
/// safe handle costs about as much as creating the native value it would guard.
/// </summary>
internal sealed unsafe class RunScope : SafeHandle
{
    private const nint Open = 1;

    private readonly OrtApi _api;
    private readonly nint[] _values;
    private readonly nint[] _infos;
    private int _valueCount;
    private int _infoCount;

    public RunScope(OrtApi api, int values, int infos) : base(0, ownsHandle: true)
    {
        _api = api;
        _values = new nint[values];
        _infos = new nint[infos];
        SetHandle(Open);
    }

    public override bool IsInvalid => handle == 0;

    public void OwnValue(nint value)
    {
        if (value != 0) _values[_valueCount++] = value;
    }

    public void OwnInfo(nint info)
    {
        if (info != 0) _infos[_infoCount++] = info;
    }

    protected override bool ReleaseHandle()
    {
        for (var i = 0; i < _infoCount; i++) _api.ReleaseTensorTypeAndShapeInfo(_infos[i]);
        for (var i = 0; i < _valueCount; i++) _api.ReleaseValue(_values[i]);
        return true;
    }
}
