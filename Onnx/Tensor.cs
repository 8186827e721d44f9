namespace CloudEdge.Onnx;

/// <summary>
/// A dense tensor held in a managed array: Float (<see cref="float"/>), Double (<see cref="double"/>) or
/// Int64 (<see cref="long"/>), row-major. The array is not copied: the tensor and its creator share it.
/// </summary>
public sealed class Tensor
{
    private readonly long[] _shape;

    private Tensor(TensorElementType elementType, Array data, long[] shape)
    {
        ElementType = elementType;
        Data = data;
        _shape = shape;
    }

    public TensorElementType ElementType { get; }

    public IReadOnlyList<long> Shape => _shape;

    public int ElementCount => Data.Length;

    internal Array Data { get; }

    internal long[] ShapeArray => _shape;

    public static Tensor Create(float[] data, params ReadOnlySpan<long> shape) => Create(TensorElementType.Float, data, shape);

    public static Tensor Create(double[] data, params ReadOnlySpan<long> shape) => Create(TensorElementType.Double, data, shape);

    public static Tensor Create(long[] data, params ReadOnlySpan<long> shape) => Create(TensorElementType.Int64, data, shape);

    /// <summary>The elements; <typeparamref name="T"/> must match <see cref="ElementType"/>.</summary>
    public T[] GetData<T>() where T : unmanaged =>
        Data as T[] ?? throw new InvalidOperationException(
            $"This tensor holds {ElementType} elements, not {typeof(T).Name}.");

    internal static Tensor Wrap(TensorElementType elementType, Array data, long[] shape) => new(elementType, data, shape);

    private static Tensor Create(TensorElementType elementType, Array data, ReadOnlySpan<long> shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        long count = 1;
        foreach (var dim in shape)
        {
            if (dim < 0) throw new ArgumentException($"Tensor dimensions must be >= 0; got [{string.Join(", ", shape.ToArray())}].", nameof(shape));
            count = checked(count * dim);
        }
        if (count != data.Length)
        {
            throw new ArgumentException(
                $"Shape [{string.Join(", ", shape.ToArray())}] holds {count} elements but the data has {data.Length}.", nameof(data));
        }
        return new Tensor(elementType, data, shape.ToArray());
    }
}
