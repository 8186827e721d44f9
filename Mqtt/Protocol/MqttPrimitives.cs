using System.Buffers.Binary;
using System.Text;

namespace CloudEdge.Mqtt;

/// <summary>Reads MQTT data types (section 1.5) from the body of one packet; every shortfall is malformed.</summary>
internal ref struct MqttBodyReader
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private readonly ReadOnlySpan<byte> _span;
    private int _position;

    public MqttBodyReader(ReadOnlySpan<byte> span)
    {
        _span = span;
        _position = 0;
    }

    public readonly int Position => _position;
    public readonly int Remaining => _span.Length - _position;

    public byte ReadByte()
    {
        if (_position >= _span.Length) throw MqttProtocolException.Malformed("Packet ends inside a byte field.");
        return _span[_position++];
    }

    public ushort ReadUInt16()
    {
        if (Remaining < 2) throw MqttProtocolException.Malformed("Packet ends inside a two byte integer.");
        var value = BinaryPrimitives.ReadUInt16BigEndian(_span[_position..]);
        _position += 2;
        return value;
    }

    public uint ReadUInt32()
    {
        if (Remaining < 4) throw MqttProtocolException.Malformed("Packet ends inside a four byte integer.");
        var value = BinaryPrimitives.ReadUInt32BigEndian(_span[_position..]);
        _position += 4;
        return value;
    }

    public uint ReadVariableByteInteger()
    {
        uint value = 0;
        for (var i = 0; i < 4; i++)
        {
            var b = ReadByte();
            value |= (uint)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                if (b == 0 && i > 0) throw MqttProtocolException.Malformed("Variable byte integer is not minimally encoded.");
                return value;
            }
        }
        throw MqttProtocolException.Malformed("Variable byte integer longer than four bytes.");
    }

    public ReadOnlySpan<byte> ReadBytes(int length)
    {
        if (length > Remaining) throw MqttProtocolException.Malformed("Packet ends inside a field.");
        var slice = _span.Slice(_position, length);
        _position += length;
        return slice;
    }

    public ReadOnlySpan<byte> ReadBinarySpan() => ReadBytes(ReadUInt16());

    public byte[] ReadBinary() => ReadBinarySpan().ToArray();

    public string ReadString() => DecodeString(ReadBinarySpan());

    public static string DecodeString(ReadOnlySpan<byte> utf8)
    {
        if (utf8.IsEmpty) return "";
        if (utf8.IndexOf((byte)0) >= 0) throw MqttProtocolException.Malformed("UTF-8 string contains U+0000.");
        try
        {
            return StrictUtf8.GetString(utf8);
        }
        catch (DecoderFallbackException)
        {
            throw MqttProtocolException.Malformed("String is not well-formed UTF-8.");
        }
    }
}

/// <summary>Writes MQTT data types into a span sized beforehand by <see cref="MqttSize"/>.</summary>
internal ref struct MqttBodyWriter
{
    private readonly Span<byte> _span;
    private int _position;

    public MqttBodyWriter(Span<byte> span)
    {
        _span = span;
        _position = 0;
    }

    public readonly int Position => _position;

    public void WriteByte(byte value) => _span[_position++] = value;

    public void WriteUInt16(ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(_span[_position..], value);
        _position += 2;
    }

    public void WriteUInt32(uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(_span[_position..], value);
        _position += 4;
    }

    public void WriteVariableByteInteger(uint value)
    {
        do
        {
            var b = (byte)(value & 0x7F);
            value >>= 7;
            if (value > 0) b |= 0x80;
            _span[_position++] = b;
        }
        while (value > 0);
    }

    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_span[_position..]);
        _position += bytes.Length;
    }

    public void WriteBinary(ReadOnlySpan<byte> bytes)
    {
        WriteUInt16((ushort)bytes.Length);
        WriteBytes(bytes);
    }

    public void WriteString(string value)
    {
        var length = Encoding.UTF8.GetBytes(value, _span[(_position + 2)..]);
        WriteUInt16((ushort)length);
        _position += length;
    }
}

internal static class MqttSize
{
    public const uint MaxVariableByteInteger = 268_435_455;

    public static int VariableByteInteger(uint value) => value switch
    {
        < 128 => 1,
        < 16_384 => 2,
        < 2_097_152 => 3,
        <= MaxVariableByteInteger => 4,
        _ => throw new MqttProtocolException(MqttReasonCode.PacketTooLarge, "Value exceeds the variable byte integer range."),
    };

    /// <summary>Length prefix plus UTF-8 bytes; validates what the peer would reject.</summary>
    public static int String(string value)
    {
        if (value.Contains('\0')) throw MqttProtocolException.Malformed("String contains U+0000.");
        int count;
        try
        {
            count = StrictEncoder.GetByteCount(value);
        }
        catch (EncoderFallbackException)
        {
            throw MqttProtocolException.Malformed("String contains an unpaired surrogate.");
        }
        if (count > ushort.MaxValue) throw MqttProtocolException.Malformed("String longer than 65535 bytes.");
        return 2 + count;
    }

    public static int Binary(int length)
    {
        if (length > ushort.MaxValue) throw MqttProtocolException.Malformed("Binary data longer than 65535 bytes.");
        return 2 + length;
    }

    private static readonly UTF8Encoding StrictEncoder = new(false, true);
}
