using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace CloudEdge.EdgeAgent.Tests.Inference;

/// <summary>A tensor held in a managed array, converted to and from ONNX Runtime's <see cref="OrtValue"/>.</summary>
internal sealed record TestTensor(TensorElementType ElementType, long[] Shape, Array Data)
{
    public long ElementCount => Data.LongLength;

    public T[] GetData<T>() => Data as T[] ?? throw new InvalidOperationException($"The tensor holds {ElementType}, not {typeof(T).Name}.");

    /// <summary>An <see cref="OrtValue"/> over this tensor's array (pinned until the value is disposed).</summary>
    public OrtValue ToOrtValue() => ElementType switch
    {
        TensorElementType.Float => OrtValue.CreateTensorValueFromMemory((float[])Data, Shape),
        TensorElementType.Double => OrtValue.CreateTensorValueFromMemory((double[])Data, Shape),
        TensorElementType.Int64 => OrtValue.CreateTensorValueFromMemory((long[])Data, Shape),
        _ => throw new NotSupportedException(ElementType.ToString()),
    };

    public static TestTensor From(OrtValue value)
    {
        var info = value.GetTensorTypeAndShape();
        Array data = info.ElementDataType switch
        {
            TensorElementType.Float => value.GetTensorDataAsSpan<float>().ToArray(),
            TensorElementType.Double => value.GetTensorDataAsSpan<double>().ToArray(),
            TensorElementType.Int64 => value.GetTensorDataAsSpan<long>().ToArray(),
            var other => throw new NotSupportedException(other.ToString()),
        };
        return new TestTensor(info.ElementDataType, info.Shape, data);
    }

    /// <summary>Runs a session on these inputs (in the model's input order) and copies every output out.</summary>
    public static TestTensor[] Run(InferenceSession session, IReadOnlyList<TestTensor> inputs)
    {
        var values = inputs.Select(i => i.ToOrtValue()).ToArray();
        try
        {
            using var options = new RunOptions();
            using var outputs = session.Run(options, session.InputNames, values, session.OutputNames);
            return outputs.Select(From).ToArray();
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }
}
