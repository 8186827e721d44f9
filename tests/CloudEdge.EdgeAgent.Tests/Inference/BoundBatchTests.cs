using CloudEdge.EdgePipeline.Inference;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace CloudEdge.EdgeAgent.Tests.Inference;

/// <summary>The zero-allocation scoring path: <see cref="BoundBatch"/> (IOBinding over pinned buffers) and the model's use of it.</summary>
[Collection(OrtCollection.Name)]
public sealed class BoundBatchTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(256)]
    public void A_bound_batch_matches_a_plain_run_and_reuses_its_buffers(int rows)
    {
        using var session = new InferenceSession(ModelFiles.ModelPath("v1"));
        using var batch = new BoundBatch(session, "features", "score", rows, FeatureSpec.FeatureCount, 1);
        Assert.Equal(rows * 8, batch.Input.Length);
        Assert.Equal(rows, batch.Output.Length);
        for (var round = 0; round < 5; round++)
        {
            var input = Rows(seed: round, count: rows);
            input.CopyTo(batch.Input);
            batch.Run();
            var expected = Assert.Single(TestTensor.Run(session, [new TestTensor(TensorElementType.Float, [rows, 8], input)])).GetData<float>();
            Assert.True(batch.Output.SequenceEqual(expected), $"round {round}");
        }
    }

    [Fact]
    public void Bound_runs_allocate_nothing_managed()
    {
        using var session = new InferenceSession(ModelFiles.ModelPath("v2"));
        using var batch = new BoundBatch(session, "features", "score", 64, FeatureSpec.FeatureCount, 1);
        Rows(seed: 1, count: 64).CopyTo(batch.Input);
        batch.Run(); // first run: ONNX Runtime plans its memory; not measured
        // A round may include one-off JIT work on this thread, so the least of three rounds of 1,000 runs is judged.
        var allocated = Enumerable.Range(0, 3).Select(_ => AllocatedBy(1000, i =>
        {
            batch.Input[4] = i * 0.001f;
            batch.Run();
        })).ToArray();
        Assert.Equal(0, allocated.Min());
    }

    [Fact]
    public void Scoring_any_count_through_the_model_allocates_nothing_and_matches_a_plain_run()
    {
        using var model = AnomalyModel.LoadDirectory(ModelFiles.Directory("v1"));
        using var session = new InferenceSession(ModelFiles.ModelPath("v1"));
        // Counts below, at and above each batch size, and one that needs several large runs.
        foreach (var count in new[] { 1, 15, 16, 17, 255, 256, 257, 700 })
        {
            var rows = Rows(seed: count, count: count);
            var scores = new float[count];
            model.Score(rows, count, scores);
            var expected = Assert.Single(TestTensor.Run(session, [new TestTensor(TensorElementType.Float, [count, 8], rows)])).GetData<float>();
            Assert.True(scores.AsSpan().SequenceEqual(expected), $"{count} rows");
        }
        var input = Rows(seed: 3, count: 300);
        var output = new float[300];
        model.Score(input, 300, output);
        Assert.Equal(0, Enumerable.Range(0, 3).Select(_ => AllocatedBy(200, _ => model.Score(input, 300, output))).Min());
    }

    [Fact]
    public void A_disposed_batch_or_model_refuses_to_run_instead_of_touching_freed_memory()
    {
        using var session = new InferenceSession(ModelFiles.ModelPath("v1"));
        var batch = new BoundBatch(session, "features", "score", 8, FeatureSpec.FeatureCount, 1);
        batch.Run();
        batch.Dispose();
        batch.Dispose(); // twice is harmless
        Assert.Throws<ObjectDisposedException>(batch.Run);
        // The session lives on.
        Assert.Equal([8L, 1L], Assert.Single(TestTensor.Run(session, [new TestTensor(TensorElementType.Float, [8, 8], new float[64])])).Shape);

        var model = AnomalyModel.LoadDirectory(ModelFiles.Directory("v1"));
        model.Dispose();
        Assert.Throws<ObjectDisposedException>(() => model.Score(new float[8], 1, new float[1]));
    }

    [Fact]
    public void A_binding_whose_output_disagrees_with_the_model_reports_the_runtimes_error_and_others_keep_working()
    {
        using var session = new InferenceSession(ModelFiles.ModelPath("v1"));
        // Two score columns for a model that writes one: ONNX Runtime refuses the run.
        using var wrong = new BoundBatch(session, "features", "score", 4, FeatureSpec.FeatureCount, 2);
        var e = Assert.Throws<OnnxRuntimeException>(wrong.Run);
        Assert.Contains("score", e.Message);
        using var right = new BoundBatch(session, "features", "score", 4, FeatureSpec.FeatureCount, 1);
        right.Run();
        Assert.Equal(4, right.Output.Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => new BoundBatch(session, "features", "score", 0, FeatureSpec.FeatureCount, 1));
    }

    private static long AllocatedBy(int runs, Action<int> run)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < runs; i++) run(i);
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    internal static float[] Rows(int seed, int count)
    {
        var random = new Random(seed);
        var rows = new float[count * 8];
        for (var i = 0; i < count; i++)
        {
            rows[i * 8 + random.Next(4)] = 1;
            for (var f = 4; f < 8; f++) rows[i * 8 + f] = (float)(random.NextDouble() * 4 - 2);
        }
        return rows;
    }
}
