using System.Buffers.Binary;
using System.Text;

namespace CloudEdge.Testing.Protobuf;

/// <summary>
/// Reads the protobuf wire format (tags, varints, fixed32/64, length-delimited fields) from a buffer, for tests
/// that decode what real components send (ONNX TensorProto files, OTLP requests) without a protobuf library.
/// Errors on truncated input are <see cref="InvalidDataException"/>.
/// </summary>
public ref struct ProtobufReader(ReadOnlySpan<byte> data)
{
    public const int Varint = 0;
    public const int Fixed64 = 1;
    public const int LengthDelimited = 2;
    public const int Fixed32 = 5;

    private readonly ReadOnlySpan<byte> data = data;
    private int position;

    public readonly bool End => position >= data.Length;

    public (int Field, int WireType) ReadTag()
    {
        var tag = ReadVarint();
        return ((int)(tag >> 3), (int)(tag & 7));
    }

    public ulong ReadVarint()
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (position >= data.Length)
            {
                throw new InvalidDataException("Truncated varint.");
            }

            var b = data[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }

        throw new InvalidDataException("Varint longer than 10 bytes.");
    }

    public uint ReadFixed32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    public ulong ReadFixed64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    public ReadOnlySpan<byte> ReadLengthDelimited() => Take(checked((int)ReadVarint()));

    public string ReadString() => Encoding.UTF8.GetString(ReadLengthDelimited());

    /// <summary>A packed repeated varint field (its length prefix, then varints).</summary>
    public List<ulong> ReadPackedVarints()
    {
        var inner = new ProtobufReader(ReadLengthDelimited());
        var values = new List<ulong>();
        while (!inner.End)
        {
            values.Add(inner.ReadVarint());
        }

        return values;
    }

    /// <summary>Skips a field this reader does not care about, as a parser must.</summary>
    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case Varint: ReadVarint(); break;
            case Fixed64: Take(8); break;
            case LengthDelimited: ReadLengthDelimited(); break;
            case Fixed32: Take(4); break;
            default: throw new InvalidDataException($"Unsupported wire type {wireType}.");
        }
    }

    private ReadOnlySpan<byte> Take(int length)
    {
        if (length < 0 || length > data.Length - position)
        {
            throw new InvalidDataException("A field runs past the end of the message.");
        }

        var slice = data.Slice(position, length);
        position += length;
        return slice;
    }
}
