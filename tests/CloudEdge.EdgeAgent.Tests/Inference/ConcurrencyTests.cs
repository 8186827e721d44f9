using CloudEdge.EdgePipeline.Inference;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace CloudEdge.EdgeAgent.Tests.Inference;

/// <summary>
/// What the agent runs at once: the pipeline scoring on its model while OTA checks another on another thread, and
/// ad-hoc runs on one shared session from many threads (ONNX Runtime's sessions are thread-safe; bound batches are not
/// shared).
/// </summary>
[Collection(OrtCollection.Name)]
public sealed class ConcurrencyTests
{
    private const int Threads = 8;
    private const int RunsPerThread = 150;

    [Fact]
    public void Many_threads_share_one_session_and_each_gets_its_own_answer()
    {
        using var session = new InferenceSession(ModelFiles.ModelPath("v2"));
        // Each thread scores different rows (batch sizes differ too); expectations come from one thread first.
        var inputs = Enumerable.Range(0, Threads).Select(t => new TestTensor(TensorElementType.Float, [1 + t * 7, 8], BoundBatchTests.Rows(seed: t, count: 1 + t * 7))).ToArray();
        var expected = inputs.Select(i => TestTensor.Run(session, [i])[0].GetData<float>()).ToArray();

        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var start = new Barrier(Threads);
        var workers = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (var r = 0; r < RunsPerThread; r++)
            {
                var got = TestTensor.Run(session, [inputs[t]])[0].GetData<float>();
                if (!got.AsSpan().SequenceEqual(expected[t])) failures.Enqueue($"thread {t} run {r}");
            }
        })).ToArray();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) Assert.True(w.Join(TimeSpan.FromMinutes(2)));
        Assert.Empty(failures);
    }

    [Fact]
    public void Models_scoring_on_many_threads_while_others_load_and_check_give_the_same_answers()
    {
        var rows = BoundBatchTests.Rows(seed: 99, count: 300);
        float[] expected;
        using (var reference = AnomalyModel.LoadDirectory(ModelFiles.Directory("v1")))
        {
            expected = new float[300];
            reference.Score(rows, 300, expected);
        }
        var failures = 0;
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
        {
            if (t % 2 == 1)
            {
                // OTA's side: load and check (sha256, contract, smoke) models while the others score.
                for (var r = 0; r < 10; r++) ModelCheck.CheckDirectory(ModelFiles.Directory(r % 2 == 0 ? "v1" : "v2"));
                return;
            }
            using var model = AnomalyModel.LoadDirectory(ModelFiles.Directory("v1"));
            var scores = new float[300];
            for (var r = 0; r < RunsPerThread; r++)
            {
                model.Score(rows, 300, scores);
                if (!scores.AsSpan().SequenceEqual(expected)) Interlocked.Increment(ref failures);
            }
        });
        Assert.Equal(0, failures);
    }
}
