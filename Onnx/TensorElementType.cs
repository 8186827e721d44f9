namespace CloudEdge.Onnx;

/// <summary>ONNX tensor element types (the values of TensorProto.DataType and ONNXTensorElementDataType).</summary>
public enum TensorElementType
{
    Undefined = 0,
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    UInt32 = 12,
    UInt64 = 13,
    Complex64 = 14,
    Complex128 = 15,
    BFloat16 = 16,
}

internal static class TensorElementTypes
{
    /// <summary>Bytes per element of the types this binding reads and writes; 0 for the others.</summary>
    public static int SizeOf(TensorElementType type) => type switch
    {
        TensorElementType.Float => sizeof(float),
        TensorElementType.Double => sizeof(double),
        TensorElementType.Int64 => sizeof(long),
        _ => 0,
    };

    public static bool IsSupported(TensorElementType type) => SizeOf(type) != 0;

    public static Array Allocate(TensorElementType type, long length, bool pinned) => type switch
    {
        TensorElementType.Float => GC.AllocateArray<float>(checked((int)length), pinned),
        TensorElementType.Double => GC.AllocateArray<double>(checked((int)length), pinned),
        TensorElementType.Int64 => GC.AllocateArray<long>(checked((int)length), pinned),
        _ => throw Unsupported(type, "tensor"),
    };

    public static NotSupportedException Unsupported(TensorElementType type, string what) =>
        new($"{what} has element type {type}; CloudEdge.Onnx reads and writes Float, Double and Int64 tensors.");
}
