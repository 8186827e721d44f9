using System.Buffers.Binary;
using System.Text;
using CloudEdge.Testing.Protobuf;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace CloudEdge.EdgeAgent.Tests.Inference;

/// <summary>
/// One ONNX TensorProto (onnx.proto: dims = 1, data_type = 2, float_data = 4, int32_data = 5, int64_data = 7,
/// name = 8, raw_data = 9, double_data = 10), read straight from the protobuf wire format (<see cref="ProtobufReader"/>). Repeated numeric
/// fields are accepted packed and unpacked, as the protobuf spec requires of a parser.
/// </summary>
internal sealed class TensorProtoData
{
    public string Name { get; private set; } = "";
    public int DataType { get; private set; }
    public List<long> Dims { get; } = [];
    public List<float> FloatData { get; } = [];
    public List<double> DoubleData { get; } = [];
    public List<long> Int64Data { get; } = [];
    public List<int> Int32Data { get; } = [];
    public byte[]? RawData { get; private set; }

    public TensorElementType ElementType => (TensorElementType)DataType;

    public long ElementCount => Dims.Aggregate(1L, (a, d) => a * d);

    public static TensorProtoData Read(string path) => Parse(File.ReadAllBytes(path));

    public static TensorProtoData Parse(ReadOnlySpan<byte> message)
    {
        var t = new TensorProtoData();
        var r = new ProtobufReader(message);
        while (!r.End)
        {
            var (field, wireType) = r.ReadTag();
            switch (field, wireType)
            {
                case (1, 0): t.Dims.Add((long)r.ReadVarint()); break;
                case (1, 2): foreach (var v in r.ReadPackedVarints()) t.Dims.Add((long)v); break;
                case (2, 0): t.DataType = (int)r.ReadVarint(); break;
                case (4, 5): t.FloatData.Add(BitConverter.Int32BitsToSingle((int)r.ReadFixed32())); break;
                case (4, 2):
                    {
                        var bytes = r.ReadLengthDelimited();
                        for (var i = 0; i + 4 <= bytes.Length; i += 4) t.FloatData.Add(BinaryPrimitives.ReadSingleLittleEndian(bytes[i..]));
                        break;
                    }
                case (5, 0): t.Int32Data.Add((int)r.ReadVarint()); break;
                case (5, 2): foreach (var v in r.ReadPackedVarints()) t.Int32Data.Add((int)v); break;
                case (7, 0): t.Int64Data.Add((long)r.ReadVarint()); break;
                case (7, 2): foreach (var v in r.ReadPackedVarints()) t.Int64Data.Add((long)v); break;
                case (8, 2): t.Name = Encoding.UTF8.GetString(r.ReadLengthDelimited()); break;
                case (9, 2): t.RawData = r.ReadLengthDelimited().ToArray(); break;
                case (10, 1): t.DoubleData.Add(BitConverter.Int64BitsToDouble((long)r.ReadFixed64())); break;
                case (10, 2):
                    {
                        var bytes = r.ReadLengthDelimited();
                        for (var i = 0; i + 8 <= bytes.Length; i += 8) t.DoubleData.Add(BinaryPrimitives.ReadDoubleLittleEndian(bytes[i..]));
                        break;
                    }
                default: r.Skip(wireType); break;
            }
        }
        return t;
    }

    /// <summary>The tensor as the tests feed it to ONNX Runtime: Float, Double and Int64 only.</summary>
    public TestTensor ToTensor()
    {
        var shape = Dims.ToArray();
        var count = checked((int)ElementCount);
        return ElementType switch
        {
            TensorElementType.Float => new TestTensor(ElementType, shape, RawData is { } raw ? FromRaw(raw, count, 4, (b, i) => BinaryPrimitives.ReadSingleLittleEndian(b[i..])) : Exactly(FloatData, count)),
            TensorElementType.Double => new TestTensor(ElementType, shape, RawData is { } raw ? FromRaw(raw, count, 8, (b, i) => BinaryPrimitives.ReadDoubleLittleEndian(b[i..])) : Exactly(DoubleData, count)),
            TensorElementType.Int64 => new TestTensor(ElementType, shape, RawData is { } raw ? FromRaw(raw, count, 8, (b, i) => BinaryPrimitives.ReadInt64LittleEndian(b[i..])) : Exactly(Int64Data, count)),
            _ => throw new NotSupportedException($"TensorProto '{Name}' has data type {ElementType}."),
        };
    }

    private static T[] Exactly<T>(List<T> values, int count) =>
        values.Count == count ? values.ToArray() : throw new InvalidDataException($"TensorProto holds {values.Count} values, its dims say {count}.");

    private delegate T ReadElement<T>(ReadOnlySpan<byte> bytes, int offset);

    private static T[] FromRaw<T>(byte[] raw, int count, int size, ReadElement<T> read)
    {
        if (raw.Length != count * size) throw new InvalidDataException($"raw_data has {raw.Length} bytes, dims say {count} x {size}.");
        var values = new T[count];
        for (var i = 0; i < count; i++) values[i] = read(raw, i * size);
        return values;
    }
}
