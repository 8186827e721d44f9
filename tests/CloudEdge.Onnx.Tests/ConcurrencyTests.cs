namespace CloudEdge.Onnx.Tests;

[Collection(OrtCollection.Name)]
public sealed class ConcurrencyTests(OrtFixture ort)
{
    private const int Threads = 8;
    private const int RunsPerThread = 150;

    [Fact]
    public void Many_threads_share_one_session_and_each_gets_its_own_answer()
    {
        using var session = ort.Environment.OpenSession(ModelFiles.ModelPath("v2"));
        // Each thread scores different rows (batch sizes differ too); expectations come from one thread first.
        var inputs = Enumerable.Range(0, Threads).Select(t => Rows(seed: t, count: 1 + t * 7)).ToArray();
        var expected = inputs.Select(rows => session.Run([Tensor.Create(rows, rows.Length / 8, 8)])[0].GetData<float>()).ToArray();

        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var start = new Barrier(Threads);
        var workers = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (var r = 0; r < RunsPerThread; r++)
            {
                var got = session.Run([Tensor.Create(inputs[t], inputs[t].Length / 8, 8)])[0].GetData<float>();
                if (!got.AsSpan().SequenceEqual(expected[t])) failures.Enqueue($"thread {t} run {r}");
            }
        })).ToArray();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) Assert.True(w.Join(TimeSpan.FromMinutes(2)));
        Assert.Empty(failures);
    }

    [Fact]
    public void Batch_runs_on_many_threads_share_one_session()
    {
        using var session = ort.Environment.OpenSession(ModelFiles.ModelPath("v1"));
        var rows = Rows(seed: 99, count: 64);
        var expected = session.Run([Tensor.Create(rows, 64, 8)])[0].GetData<float>();
        var failures = 0;
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, _ =>
        {
            using var batch = session.CreateBatchRun(64);
            rows.CopyTo(batch.Input<float>(0));
            for (var r = 0; r < RunsPerThread; r++)
            {
                batch.Run();
                if (!batch.Output<float>(0).SequenceEqual(expected)) Interlocked.Increment(ref failures);
            }
        });
        Assert.Equal(0, failures);
    }

    [Fact]
    public async Task Disposing_a_session_under_load_lets_runs_in_flight_finish()
    {
        var session = ort.Environment.OpenSession(ModelFiles.ModelPath("v1"));
        var rows = Rows(seed: 5, count: 32);
        var expected = session.Run([Tensor.Create(rows, 32, 8)])[0].GetData<float>();
        var completed = 0;
        var refused = 0;
        var wrong = 0;
        using var running = new CountdownEvent(4);
        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            running.Signal();
            while (true)
            {
                try
                {
                    var got = session.Run([Tensor.Create(rows, 32, 8)])[0].GetData<float>();
                    if (!got.AsSpan().SequenceEqual(expected)) Interlocked.Increment(ref wrong);
                    Interlocked.Increment(ref completed);
                }
                catch (ObjectDisposedException)
                {
                    Interlocked.Increment(ref refused);
                    return;
                }
            }
        })).ToArray();
        Assert.True(running.Wait(TimeSpan.FromMinutes(1)));
        SpinWait.SpinUntil(() => Volatile.Read(ref completed) >= 100, TimeSpan.FromMinutes(1));
        session.Dispose();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(4, refused);
        Assert.Equal(0, wrong);
        Assert.True(completed >= 100);
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
