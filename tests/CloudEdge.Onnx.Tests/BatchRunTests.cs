namespace CloudEdge.Onnx.Tests;

[Collection(OrtCollection.Name)]
public sealed class BatchRunTests(OrtFixture ort)
{
    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(256)]
    public void Batch_run_matches_run_and_reuses_its_buffers(int batchSize)
    {
        using var session = ort.Environment.OpenSession(ModelFiles.ModelPath("v1"));
        using var batch = session.CreateBatchRun(batchSize);
        Assert.Equal([(long)batchSize, 8L], batch.InputShape(0));
        Assert.Equal([(long)batchSize, 1L], batch.OutputShape(0));
        for (var round = 0; round < 5; round++)
        {
            var rows = ConcurrencyTests.Rows(seed: round, count: batchSize);
            rows.CopyTo(batch.Input<float>(0));
            batch.Run();
            var expected = session.Run([Tensor.Create(rows, batchSize, 8)])[0].GetData<float>();
            Assert.True(batch.Output<float>(0).SequenceEqual(expected), $"round {round}");
        }
    }

    [Fact]
    public void Batch_runs_allocate_nothing_managed()
    {
        using var session = ort.Environment.OpenSession(ModelFiles.ModelPath("v2"));
        using var batch = session.CreateBatchRun(64);
        ConcurrencyTests.Rows(seed: 1, count: 64).CopyTo(batch.Input<float>(0));
        batch.Run(); // first run: ONNX Runtime plans its memory; not measured
        // A round may include one-off JIT work on this thread, so the least of three rounds of 1,000 runs is
        // judged: the runs themselves allocate nothing.
        var allocated = Enumerable.Range(0, 3).Select(_ => AllocatedByRuns(batch, 1000)).ToArray();
        Assert.Equal(0, allocated.Min());
        Assert.Equal(64, batch.Output<float>(0).Length);
    }

    private static long AllocatedByRuns(BatchRun batch, int runs)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < runs; i++)
        {
            batch.Input<float>(0)[4] = i * 0.001f;
            batch.Run();
        }
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void Multiple_inputs_and_explicit_shapes_bind_in_model_order()
    {
        using var session = ort.Environment.OpenSession(Path.Combine(ConformanceTests.DataRoot, "test_add_bcast", "model.onnx"));
        using var batch = session.CreateBatchRun([[3, 4, 5], [5]], [[3, 4, 5]]);
        var x = batch.Input<float>(0);
        var y = batch.Input<float>(1);
        for (var i = 0; i < x.Length; i++) x[i] = i;
        for (var i = 0; i < y.Length; i++) y[i] = 100 * i;
        batch.Run();
        var z = batch.Output<float>(0);
        for (var i = 0; i < z.Length; i++) Assert.Equal(i + 100 * (i % 5), z[i]);
    }

    [Fact]
    public void Double_and_int64_buffers_bind_too()
    {
        using var session = ort.Environment.OpenSession(Path.Combine(ConformanceTests.DataRoot, "test_argmax_no_keepdims_example", "model.onnx"));
        Assert.Equal(TensorElementType.Float, session.Inputs[0].ElementType);
        using var batch = session.CreateBatchRun(1);
        float[] data = [2, 1, 3, 10];
        data.CopyTo(batch.Input<float>(0));
        batch.Run();
        Assert.Equal([0L, 1L], batch.Output<long>(0).ToArray());

        using var cast = ort.Environment.OpenSession(Path.Combine(ConformanceTests.DataRoot, "test_cast_FLOAT_to_DOUBLE", "model.onnx"));
        using var castBatch = cast.CreateBatchRun(1);
        castBatch.Input<float>(0).Fill(0.5f);
        castBatch.Run();
        Assert.All(castBatch.Output<double>(0).ToArray(), v => Assert.Equal(0.5, v));
    }

    [Fact]
    public void A_disposed_batch_refuses_to_run_and_its_session_lives_on()
    {
        using var session = ort.Environment.OpenSession(ModelFiles.ModelPath("v1"));
        var batch = session.CreateBatchRun(8);
        batch.Run();
        batch.Dispose();
        Assert.Throws<ObjectDisposedException>(() => batch.Run());
        Assert.Equal([8L, 1L], session.Run([Tensor.Create(new float[64], 8, 8)])[0].Shape);
    }

    [Fact]
    public void Bad_shapes_and_element_types_are_refused()
    {
        using var session = ort.Environment.OpenSession(ModelFiles.ModelPath("v1"));
        Assert.Throws<ArgumentOutOfRangeException>(() => session.CreateBatchRun(0));
        Assert.Throws<ArgumentException>(() => session.CreateBatchRun([[4, 7]], [[4, 1]]));
        Assert.Throws<ArgumentException>(() => session.CreateBatchRun([[4, 8, 1]], [[4, 1]]));
        Assert.Throws<ArgumentException>(() => session.CreateBatchRun([[4, 8]], []));
        using var batch = session.CreateBatchRun(4);
        Assert.Throws<InvalidOperationException>(() => batch.Input<double>(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => batch.Output<float>(1));
    }

    [Fact]
    public void A_batch_keeps_working_after_a_failed_run_elsewhere_and_reports_runtime_errors()
    {
        using var session = ort.Environment.OpenSession(ModelFiles.ModelPath("v1"));
        // An output buffer whose shape disagrees with what the model produces: the runtime refuses the run.
        using var wrong = session.CreateBatchRun([[4, 8]], [[5, 1]]);
        var e = Assert.Throws<OnnxRuntimeException>(() => wrong.Run());
        Assert.NotEqual(OnnxErrorCode.Ok, e.ErrorCode);
        using var right = session.CreateBatchRun(4);
        right.Run();
        Assert.Equal(4, right.Output<float>(0).Length);
    }
}
