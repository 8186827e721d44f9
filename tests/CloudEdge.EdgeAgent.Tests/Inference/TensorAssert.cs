using Microsoft.ML.OnnxRuntime.Tensors;

namespace CloudEdge.EdgeAgent.Tests.Inference;

internal static class TensorAssert
{
    /// <summary>ONNX's backend-test rule for floating point (|a - b| &lt;= atol + rtol * |b|), exact for integers.</summary>
    public static void Close(TestTensor expected, TestTensor actual, string what, double rtol = 1e-3, double atol = 1e-5)
    {
        Assert.Equal(expected.ElementCount, actual.ElementCount);
        switch (expected.ElementType)
        {
            case TensorElementType.Float:
                Compare(expected.GetData<float>().Select(v => (double)v).ToArray(), actual.GetData<float>().Select(v => (double)v).ToArray(), what, rtol, atol);
                break;
            case TensorElementType.Double:
                Compare(expected.GetData<double>(), actual.GetData<double>(), what, rtol, atol);
                break;
            case TensorElementType.Int64:
                Assert.Equal(expected.GetData<long>(), actual.GetData<long>());
                break;
            default:
                throw new NotSupportedException(expected.ElementType.ToString());
        }
    }

    private static void Compare(double[] expected, double[] actual, string what, double rtol, double atol)
    {
        for (var i = 0; i < expected.Length; i++)
        {
            var (e, a) = (expected[i], actual[i]);
            if (double.IsNaN(e) && double.IsNaN(a)) continue;
            if (double.IsInfinity(e) && e == a) continue;
            Assert.True(Math.Abs(e - a) <= atol + rtol * Math.Abs(e), $"{what}: element {i} is {a}, expected {e}");
        }
    }
}
