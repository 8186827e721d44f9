using System.Runtime.InteropServices;
using CloudEdge.Onnx.Native;

namespace CloudEdge.Onnx.Tests;

[Collection(OrtCollection.Name)]
public sealed class ErrorTests(OrtFixture ort)
{
    [Fact]
    public void Corrupt_model_bytes_give_our_exception_with_the_runtimes_message()
    {
        var model = File.ReadAllBytes(ModelFiles.ModelPath("v1"));
        var corrupt = model[..(model.Length / 2)];
        var e = Assert.Throws<OnnxRuntimeException>(() => ort.Environment.OpenSession(corrupt));
        Assert.Equal(OnnxErrorCode.InvalidProtobuf, e.ErrorCode);
        Assert.Contains("protobuf parsing failed", e.RuntimeMessage, StringComparison.OrdinalIgnoreCase);
        Assert.StartsWith("[ONNX Runtime InvalidProtobuf] ", e.Message);
    }

    [Fact]
    public void Corrupt_model_file_gives_our_exception()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cloudedge-corrupt-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, "this is not an ONNX model"u8.ToArray());
        try
        {
            var e = Assert.Throws<OnnxRuntimeException>(() => ort.Environment.OpenSession(path));
            Assert.Equal(OnnxErrorCode.InvalidProtobuf, e.ErrorCode);
            Assert.Contains(path, e.RuntimeMessage);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Missing_model_file_gives_no_such_file()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cloudedge-missing-{Guid.NewGuid():N}.onnx");
        var e = Assert.Throws<OnnxRuntimeException>(() => ort.Environment.OpenSession(path));
        Assert.Equal(OnnxErrorCode.NoSuchFile, e.ErrorCode);
        Assert.Contains(path, e.RuntimeMessage);
    }

    [Fact]
    public void Wrong_input_shape_and_type_are_the_runtimes_invalid_argument()
    {
        using var session = ort.Environment.OpenSession(ModelFiles.ModelPath("v1"));
        var shape = Assert.Throws<OnnxRuntimeException>(() => session.Run([Tensor.Create(new float[10], 2, 5)]));
        Assert.Equal(OnnxErrorCode.InvalidArgument, shape.ErrorCode);
        Assert.Contains("invalid dimensions", shape.RuntimeMessage);
        var type = Assert.Throws<OnnxRuntimeException>(() => session.Run([Tensor.Create(new double[16], 2, 8)]));
        Assert.Equal(OnnxErrorCode.InvalidArgument, type.ErrorCode);
        Assert.Contains("data type", type.RuntimeMessage);
        // The session is still good after failed runs.
        Assert.Equal([2L, 1L], session.Run([Tensor.Create(new float[16], 2, 8)])[0].Shape);
    }

    [Fact]
    public void Wrong_input_count_or_name_is_refused_before_the_runtime_is_called()
    {
        using var session = ort.Environment.OpenSession(ModelFiles.ModelPath("v1"));
        Assert.Throws<ArgumentException>(() => session.Run(Array.Empty<Tensor>()));
        var e = Assert.Throws<ArgumentException>(() => session.Run(new Dictionary<string, Tensor> { ["nope"] = Tensor.Create(new float[8], 1, 8) }));
        Assert.Contains("features", e.Message);
    }

    [Fact]
    public void A_disposed_session_refuses_to_run()
    {
        var session = ort.Environment.OpenSession(ModelFiles.ModelPath("v1"));
        using var batch = session.CreateBatchRun(4);
        session.Dispose();
        Assert.Throws<ObjectDisposedException>(() => session.Run([Tensor.Create(new float[8], 1, 8)]));
        Assert.Throws<ObjectDisposedException>(() => batch.Run());
        Assert.Throws<ObjectDisposedException>(() => session.CreateBatchRun(4));
    }

    [Fact]
    public void A_disposed_environment_refuses_new_sessions_and_its_sessions_keep_running()
    {
        var environment = OrtEnvironment.Create();
        using var session = environment.OpenSession(ModelFiles.ModelPath("v1"));
        environment.Dispose();
        Assert.Throws<ObjectDisposedException>(() => environment.OpenSession(ModelFiles.ModelPath("v1")));
        Assert.Equal([3L, 1L], session.Run([Tensor.Create(new float[24], 3, 8)])[0].Shape);
    }

    [Fact]
    public unsafe void Status_code_and_message_round_trip_through_the_api_table()
    {
        // Exercises the table slots this binding reads errors through (CreateStatus, GetErrorCode,
        // GetErrorMessage, ReleaseStatus) with a status we create ourselves.
        var api = OrtLibrary.Load(null).Api;
        var message = "made by the test \u00e9"u8.ToArray().Append((byte)0).ToArray();
        nint status;
        fixed (byte* m = message) status = api.CreateStatus((int)OnnxErrorCode.NotImplemented, m);
        var e = Assert.Throws<OnnxRuntimeException>(() => api.Check(status));
        Assert.Equal(OnnxErrorCode.NotImplemented, e.ErrorCode);
        Assert.Equal("made by the test \u00e9", e.RuntimeMessage);
        api.Check(0);
    }
}
