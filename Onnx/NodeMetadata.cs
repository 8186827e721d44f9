namespace CloudEdge.Onnx;

/// <summary>A model input or output as the session sees it.</summary>
public sealed class NodeMetadata
{
    internal NodeMetadata(string name, bool isTensor, TensorElementType elementType, long[] shape, string[] symbolicShape)
    {
        Name = name;
        IsTensor = isTensor;
        ElementType = elementType;
        Shape = Array.AsReadOnly(shape);
        SymbolicShape = Array.AsReadOnly(symbolicShape);
    }

    public string Name { get; }

    /// <summary>False for sequences, maps and other non-tensor values, which this binding does not run.</summary>
    public bool IsTensor { get; }

    public TensorElementType ElementType { get; }

    /// <summary>Dimensions; -1 where the model leaves a dimension free (see <see cref="SymbolicShape"/>).</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>The dimension names the model gives (e.g. "N" for a batch dimension); "" where it gives none.</summary>
    public IReadOnlyList<string> SymbolicShape { get; }

    public override string ToString() =>
        $"{Name}: {ElementType}[{string.Join(", ", Shape.Select((d, i) => d >= 0 ? d.ToString() : SymbolicShape[i] is { Length: > 0 } s ? s : "?"))}]";
}
