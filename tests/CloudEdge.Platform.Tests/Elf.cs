namespace CloudEdge.Platform.Tests;

/// <summary>Which architecture a native file is built for: e_machine of its ELF header.</summary>
internal static class Elf
{
    public const ushort X64 = 0x3E;
    public const ushort Aarch64 = 0xB7;

    public static ushort Machine(string file)
    {
        Span<byte> header = stackalloc byte[20];
        using var stream = File.OpenRead(file);
        stream.ReadExactly(header);
        Assert.True(header[..4].SequenceEqual("\u007fELF"u8), $"{file} is not an ELF file");
        return BitConverter.ToUInt16(header[18..20]);
    }
}
