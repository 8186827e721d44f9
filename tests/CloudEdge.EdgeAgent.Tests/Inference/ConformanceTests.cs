using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit.Abstractions;

namespace CloudEdge.EdgeAgent.Tests.Inference;

/// <summary>
/// ONNX's own backend node tests (Debian's libonnx-testdata: model.onnx plus TensorProto inputs and expected
/// outputs) run through Microsoft.ML.OnnxRuntime as the agent uses it. The sample is deterministic: for each
/// operator family below, the first cases in name order whose inputs and outputs are all Float, Double or Int64.
/// </summary>
[Collection(OrtCollection.Name)]
public sealed class ConformanceTests(ITestOutputHelper output)
{
    public const string SuitesRoot = "/usr/share/libonnx-testdata/data";
    public const string DataRoot = SuitesRoot + "/node";
    private const int CasesPerFamily = 4;

    private static readonly string[] Families =
    [
        "abs", "add", "argmax", "averagepool", "basic_conv", "batchnorm_example", "batchnorm_epsilon", "cast_", "clip",
        "concat", "conv_", "convtranspose", "div", "einsum", "elu", "exp", "flatten", "gather", "gemm",
        "globalaveragepool", "globalmaxpool", "gru", "hardmax", "hardsigmoid", "identity", "instancenorm",
        "layer_normalization", "leakyrelu", "log_", "logsoftmax", "lrn", "lstm", "matmul", "max_", "maxpool", "mean",
        "min_", "mul", "neg", "pow", "reduce_l2", "reduce_log_sum_exp", "reduce_max", "reduce_mean", "reduce_min",
        "reduce_prod", "reduce_sum", "reduce_sum_square", "relu", "reshape", "rnn", "selu", "sigmoid", "slice",
        "softmax", "softplus", "sqrt", "squeeze", "sub", "sum", "tanh", "tile", "transpose", "unsqueeze",
    ];

    /// <summary>Cases ONNX Runtime's CPU provider itself declines; checked below to fail with its own message.</summary>
    public static readonly IReadOnlyDictionary<string, string> RuntimeGaps = new Dictionary<string, string>
    {
        ["test_gru_batchwise"] = "Batchwise recurrent operations (layout == 1) are not supported",
        ["test_lstm_batchwise"] = "Batchwise recurrent operations (layout == 1) are not supported",
    };

    private static readonly TensorElementType[] Supported = [TensorElementType.Float, TensorElementType.Double, TensorElementType.Int64];

    public static TheoryData<string> Cases() => new(CaseNames());

    private static List<string> CaseNames()
    {
        var data = new List<string>();
        var all = Directory.Exists(DataRoot)
            ? Directory.GetDirectories(DataRoot).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray()
            : [];
        foreach (var family in Families)
        {
            var prefix = "test_" + family;
            var bare = prefix.TrimEnd('_');
            foreach (var name in all.Where(n => n.StartsWith(prefix, StringComparison.Ordinal) || n == bare)
                         .Where(n => !Families.Any(f => f.Length > family.Length && f.StartsWith(family, StringComparison.Ordinal) && n.StartsWith("test_" + f, StringComparison.Ordinal)))
                         .Where(n => !RuntimeGaps.ContainsKey(n))
                         .Where(n => HasOnlySupportedTensors(Path.Combine(DataRoot, n)))
                         .Take(CasesPerFamily))
            {
                data.Add("node/" + name);
            }
        }
        return data;
    }

    [Fact]
    public void The_sample_is_broad()
    {
        // Guards the data: an empty or tiny sample would make the theory below pass vacuously.
        var cases = CaseNames();
        Assert.True(cases.Count >= 150, $"only {cases.Count} conformance cases found under {DataRoot}");
        Assert.True(cases.Where(c => c.StartsWith("node/")).Select(c => c.Split('_')[1]).Distinct().Count() >= 50);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Node_test_matches_the_expected_outputs(string name)
    {
        var dir = Path.Combine(SuitesRoot, name);
        using var session = new InferenceSession(Path.Combine(dir, "model.onnx"));
        var sets = Directory.GetDirectories(dir, "test_data_set_*").Order(StringComparer.Ordinal).ToArray();
        Assert.NotEmpty(sets);
        foreach (var set in sets)
        {
            var inputs = NumberedFiles(set, "input_").Select(f => TensorProtoData.Read(f).ToTensor()).ToArray();
            var expected = NumberedFiles(set, "output_").Select(f => TensorProtoData.Read(f).ToTensor()).ToArray();
            Assert.Equal(session.InputNames.Count, inputs.Length);
            var actual = TestTensor.Run(session, inputs);
            Assert.Equal(expected.Length, actual.Length);
            for (var i = 0; i < expected.Length; i++)
            {
                Assert.Equal(expected[i].ElementType, actual[i].ElementType);
                Assert.Equal(expected[i].Shape, actual[i].Shape);
                TensorAssert.Close(expected[i], actual[i], $"{name}/{Path.GetFileName(set)} output {i} ({session.OutputNames[i]})");
            }
        }
        output.WriteLine($"{name}: {sets.Length} data set(s), inputs {string.Join("; ", session.InputNames)}");
    }

    [Theory]
    [InlineData("test_gru_batchwise")]
    [InlineData("test_lstm_batchwise")]
    public void A_model_the_runtime_declines_fails_with_its_own_message(string name)
    {
        var e = Assert.Throws<OnnxRuntimeException>(() => new InferenceSession(Path.Combine(DataRoot, name, "model.onnx")));
        Assert.Contains(RuntimeGaps[name], e.Message);
    }

    [Fact]
    public void A_model_older_than_the_runtimes_oldest_opset_kernels_fails_with_its_own_message()
    {
        // The suite's PyTorch exports use opset 6; ONNX Runtime no longer has an Add kernel for it.
        var model = Path.Combine(SuitesRoot, "pytorch-operator", "test_operator_add_broadcast", "model.onnx");
        var e = Assert.Throws<OnnxRuntimeException>(() => new InferenceSession(model));
        Assert.Contains("NotImplemented", e.Message);
        Assert.Contains("Could not find an implementation for Add(6)", e.Message);
    }

    private static bool HasOnlySupportedTensors(string dir)
    {
        var sets = Directory.GetDirectories(dir, "test_data_set_*");
        if (sets.Length == 0 || !File.Exists(Path.Combine(dir, "model.onnx"))) return false;
        foreach (var file in sets.SelectMany(s => Directory.GetFiles(s, "*.pb")))
        {
            try
            {
                var proto = TensorProtoData.Read(file);
                if (!Supported.Contains(proto.ElementType)) return false;
                proto.ToTensor();
            }
            catch (InvalidDataException)
            {
                return false; // a SequenceProto or OptionalProto, not a tensor
            }
        }
        return true;
    }

    private static IEnumerable<string> NumberedFiles(string set, string prefix) =>
        Directory.GetFiles(set, prefix + "*.pb")
            .OrderBy(f => int.Parse(Path.GetFileNameWithoutExtension(f)[prefix.Length..]));
}
