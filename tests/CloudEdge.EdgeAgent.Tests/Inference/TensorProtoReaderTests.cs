using Microsoft.ML.OnnxRuntime.Tensors;

namespace CloudEdge.EdgeAgent.Tests.Inference;

/// <summary>The test-side TensorProto reader, on messages encoded by hand from the protobuf wire format.</summary>
public sealed class TensorProtoReaderTests
{
    [Fact]
    public void Reads_packed_float_data_dims_and_name()
    {
        byte[] message =
        [
            0x0A, 0x02, 0x02, 0x03,             // dims (1), packed: [2, 3]
            0x10, 0x01,                         // data_type (2) = FLOAT
            0x22, 0x18, .. Floats(1, 2, 3, 4, 5, -6), // float_data (4), packed
            0x42, 0x01, (byte)'x',              // name (8) = "x"
        ];
        var t = TensorProtoData.Parse(message);
        Assert.Equal("x", t.Name);
        var tensor = t.ToTensor();
        Assert.Equal([2L, 3L], tensor.Shape);
        Assert.Equal([1f, 2f, 3f, 4f, 5f, -6f], tensor.GetData<float>());
    }

    [Fact]
    public void Reads_unpacked_dims_and_int64_data_with_negative_values()
    {
        byte[] message =
        [
            0x08, 0x02,                         // dims (1), one varint
            0x10, 0x07,                         // data_type = INT64
            0x38, 0x05,                         // int64_data (7) = 5, unpacked
            0x38, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, // int64_data = -1 (ten-byte varint)
        ];
        var tensor = TensorProtoData.Parse(message).ToTensor();
        Assert.Equal([2L], tensor.Shape);
        Assert.Equal([5L, -1L], tensor.GetData<long>());
    }

    [Fact]
    public void Reads_raw_data_for_doubles_and_skips_unknown_fields()
    {
        byte[] message =
        [
            0x0A, 0x01, 0x02,                   // dims = [2]
            0x10, 0x0B,                         // data_type = DOUBLE
            0x62, 0x03, (byte)'d', (byte)'o', (byte)'c', // doc_string (12): skipped
            0x4A, 0x10, .. BitConverter.GetBytes(0.25), .. BitConverter.GetBytes(-8.5), // raw_data (9)
        ];
        var tensor = TensorProtoData.Parse(message).ToTensor();
        Assert.Equal(TensorElementType.Double, tensor.ElementType);
        Assert.Equal([0.25, -8.5], tensor.GetData<double>());
    }

    [Fact]
    public void Reads_int32_data_and_refuses_a_count_mismatch()
    {
        byte[] int32 = [0x0A, 0x01, 0x03, 0x10, 0x06, 0x2A, 0x03, 0x01, 0x02, 0x7F]; // INT32, int32_data packed [1, 2, 127]
        var t = TensorProtoData.Parse(int32);
        Assert.Equal([1, 2, 127], t.Int32Data);
        Assert.Throws<NotSupportedException>(() => t.ToTensor()); // Int32 is not a type these tests run

        byte[] mismatch = [0x0A, 0x01, 0x03, 0x10, 0x01, 0x22, 0x04, .. Floats(1)]; // dims say 3, one float given
        Assert.Throws<InvalidDataException>(() => TensorProtoData.Parse(mismatch).ToTensor());
        Assert.Throws<InvalidDataException>(() => TensorProtoData.Parse([0x0A, 0x05, 0x01]));  // truncated
    }

    private static byte[] Floats(params float[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();
}
