namespace CloudEdge.Onnx.Tests;

[Collection(OrtCollection.Name)]
public sealed class MetadataTests(OrtFixture ort)
{
    private static string NodeModel(string name) => Path.Combine(ConformanceTests.DataRoot, name, "model.onnx");

    [Fact]
    public void Environment_reports_the_loaded_runtime()
    {
        Assert.Equal("1.23.0", ort.Environment.RuntimeVersion);
        var rid = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64
            ? "linux-arm64" : "linux-x64";
        var expected = System.Environment.GetEnvironmentVariable("CLOUDEDGE_ONNXRUNTIME_PATH") is { Length: > 0 } configured
            ? Path.GetFullPath(configured)
            : Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native", "libonnxruntime.so.1");
        Assert.Equal(expected, ort.Environment.LibraryPath);
    }

    [Fact]
    public void Symbolic_batch_dimension_is_reported_by_name()
    {
        using var session = ort.Environment.OpenSession(ModelFiles.ModelPath("v1"));
        var input = Assert.Single(session.Inputs);
        Assert.Equal("features", input.Name);
        Assert.True(input.IsTensor);
        Assert.Equal(TensorElementType.Float, input.ElementType);
        Assert.Equal([-1L, 8L], input.Shape);
        Assert.Equal(["N", ""], input.SymbolicShape);
        Assert.Equal("features: Float[N, 8]", input.ToString());
        var output = Assert.Single(session.Outputs);
        Assert.Equal("score", output.Name);
        Assert.Equal([-1L, 1L], output.Shape);
        Assert.Equal(["N", ""], output.SymbolicShape);
    }

    [Fact]
    public void Fixed_shapes_and_several_inputs_are_reported_in_model_order()
    {
        using var session = ort.Environment.OpenSession(NodeModel("test_gemm_default_matrix_bias"));
        Assert.Equal(["a", "b", "c"], session.Inputs.Select(i => i.Name));
        Assert.Equal([3L, 6L], session.Inputs[0].Shape);
        Assert.Equal([6L, 4L], session.Inputs[1].Shape);
        Assert.Equal([3L, 4L], session.Inputs[2].Shape);
        Assert.All(session.Inputs, i => Assert.Equal(["", ""], i.SymbolicShape));
        Assert.Equal("y", Assert.Single(session.Outputs).Name);
    }

    [Fact]
    public void Double_and_int64_element_types_are_reported()
    {
        using (var cast = ort.Environment.OpenSession(NodeModel("test_cast_FLOAT_to_DOUBLE")))
        {
            Assert.Equal(TensorElementType.Float, cast.Inputs[0].ElementType);
            Assert.Equal(TensorElementType.Double, cast.Outputs[0].ElementType);
        }
        using var argmax = ort.Environment.OpenSession(NodeModel("test_argmax_default_axis_example"));
        Assert.Equal(TensorElementType.Int64, argmax.Outputs[0].ElementType);
    }

    [Fact]
    public void Non_tensor_values_are_described_but_not_run()
    {
        // A model with a Bool input and a sequence-of-tensors output.
        using var session = ort.Environment.OpenSession(NodeModel("test_if_seq"));
        var input = Assert.Single(session.Inputs);
        Assert.True(input.IsTensor);
        Assert.Equal(TensorElementType.Bool, input.ElementType);
        var output = Assert.Single(session.Outputs);
        Assert.False(output.IsTensor);
        Assert.Equal(TensorElementType.Undefined, output.ElementType);
        Assert.Empty(output.Shape);
        var e = Assert.Throws<NotSupportedException>(() => session.CreateBatchRun(1));
        Assert.Contains("Bool", e.Message);
    }

    [Fact]
    public void Symbolic_dimension_of_a_one_dimensional_input_is_reported()
    {
        using var session = ort.Environment.OpenSession("/usr/share/libonnx-testdata/data/simple/test_sequence_model8/model.onnx");
        Assert.Equal(["n"], session.Inputs[0].SymbolicShape);
        Assert.Equal([-1L], session.Inputs[0].Shape);
        Assert.Equal(TensorElementType.Int64, session.Inputs[1].ElementType);
        Assert.Equal([3L], session.Inputs[1].Shape);
        Assert.Empty(session.Outputs[0].Shape); // a scalar
    }

    [Fact]
    public void Model_from_bytes_matches_model_from_file()
    {
        var path = NodeModel("test_matmul_2d");
        using var fromFile = ort.Environment.OpenSession(path);
        using var fromBytes = ort.Environment.OpenSession(File.ReadAllBytes(path));
        Assert.Equal(fromFile.Inputs.Select(i => i.ToString()), fromBytes.Inputs.Select(i => i.ToString()));
        var a = Tensor.Create(Enumerable.Range(0, 12).Select(i => (float)i).ToArray(), 3, 4);
        var b = Tensor.Create(Enumerable.Range(0, 12).Select(i => (float)(i % 5)).ToArray(), 4, 3);
        Assert.Equal(fromFile.Run([a, b])[0].GetData<float>(), fromBytes.Run([a, b])[0].GetData<float>());
    }

    [Fact]
    public void Inputs_can_be_given_by_name_and_outputs_come_back_by_name()
    {
        using var session = ort.Environment.OpenSession(NodeModel("test_sub"));
        var x = Tensor.Create(Enumerable.Repeat(5f, 60).ToArray(), 3, 4, 5);
        var y = Tensor.Create(Enumerable.Repeat(2f, 60).ToArray(), 3, 4, 5);
        // Given out of order on purpose: names decide, not positions.
        var result = session.Run(new Dictionary<string, Tensor> { ["y"] = y, ["x"] = x });
        Assert.All(Assert.Single(result).Value.GetData<float>(), v => Assert.Equal(3f, v));
        Assert.Equal("z", result.Keys.Single());
    }

    [Fact]
    public void Intra_op_threads_are_configurable_and_do_not_change_results()
    {
        var path = NodeModel("test_conv_with_strides_padding");
        using var single = ort.Environment.OpenSession(path);
        using var multi = ort.Environment.OpenSession(path, new InferenceSessionOptions { IntraOpThreads = 2 });
        var x = Tensor.Create(Enumerable.Range(0, 35).Select(i => (float)i).ToArray(), 1, 1, 7, 5);
        var w = Tensor.Create(Enumerable.Repeat(1f, 9).ToArray(), 1, 1, 3, 3);
        Assert.Equal(single.Run([x, w])[0].GetData<float>(), multi.Run([x, w])[0].GetData<float>());
        Assert.Throws<ArgumentOutOfRangeException>(() => ort.Environment.OpenSession(path, new InferenceSessionOptions { IntraOpThreads = -1 }));
    }

    [Fact]
    public void Tensor_checks_its_shape_and_element_type()
    {
        Assert.Throws<ArgumentException>(() => Tensor.Create(new float[5], 2, 3));
        Assert.Throws<ArgumentException>(() => Tensor.Create(new float[0], -1));
        var scalar = Tensor.Create(new double[] { 4 });
        Assert.Empty(scalar.Shape);
        Assert.Equal(TensorElementType.Double, scalar.ElementType);
        Assert.Throws<InvalidOperationException>(() => scalar.GetData<float>());
        Assert.Equal(new long[] { 7 }, Tensor.Create(new long[] { 7 }, 1).GetData<long>());
    }
}
