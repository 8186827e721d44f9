using System.Security.Cryptography;
using CloudEdge.Silo.Api;

namespace CloudEdge.Silo.Edge;

/// <summary>A stored model blob: its sha256 (lower-case hex), size, and whether this upload wrote it.</summary>
internal readonly record struct StoredBlob(string Sha256, long Size, bool Created);

/// <summary>
/// Model bytes stored content-addressed under <c>{data}/models/sha256/{hex}</c>. An upload streams
/// to a temporary file in the same directory while hashing, then is renamed to its hash, so a blob
/// is either complete or absent, and identical uploads share one file.
/// </summary>
internal sealed class ModelBlobStore
{
    /// <summary>Fewer bytes cannot hold an ONNX model (a ModelProto with a graph).</summary>
    public const int MinModelBytes = 16;

    public ModelBlobStore(string dataDirectory)
    {
        Root = Path.Combine(dataDirectory, "models", "sha256");
    }

    public string Root { get; }

    public static bool IsSha256(string? text) =>
        text is { Length: 64 } && text.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));

    /// <summary>The path of a stored blob, or null when there is none.</summary>
    public string? Find(string sha256)
    {
        var path = Path.Combine(Root, sha256);
        return IsSha256(sha256) && File.Exists(path) ? path : null;
    }

    /// <exception cref="RequestRejectedException">Too large (413), or not plausibly an ONNX protobuf (400).</exception>
    public async Task<StoredBlob> SaveAsync(Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Root);
        var temporary = Path.Combine(Root, $".upload-{Guid.NewGuid():N}");
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long size = 0;
            var first = -1;
            await using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                var buffer = new byte[81920];
                int read;
                while ((read = await content.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    if (first < 0)
                    {
                        first = buffer[0];
                    }

                    size += read;
                    if (size > maxBytes)
                    {
                        throw new RequestRejectedException(StatusCodes.Status413PayloadTooLarge, "model_too_large", $"A model is at most {maxBytes} bytes.");
                    }

                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }

                await file.FlushAsync(cancellationToken);
            }

            if (size < MinModelBytes || !IsProtobufFieldKey(first))
            {
                throw new RequestRejectedException(StatusCodes.Status400BadRequest, "not_onnx",
                    $"The body is not plausibly an ONNX model: it must be at least {MinModelBytes} bytes of protobuf (a ModelProto).");
            }

            var sha = Convert.ToHexStringLower(hash.GetHashAndReset());
            var target = Path.Combine(Root, sha);
            if (File.Exists(target))
            {
                return new StoredBlob(sha, size, Created: false);
            }

            try
            {
                File.Move(temporary, target, overwrite: false);
                return new StoredBlob(sha, size, Created: true);
            }
            catch (IOException) when (File.Exists(target))
            {
                // A concurrent upload of the same bytes won the rename: same content, nothing to do.
                return new StoredBlob(sha, size, Created: false);
            }
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    /// <summary>
    /// An ONNX file is a serialized ModelProto, whose writers emit fields in number order, starting
    /// with ir_version (key 0x08). Accept any one-byte key of a varint or length-delimited field.
    /// </summary>
    private static bool IsProtobufFieldKey(int first) =>
        first is > 0 and < 0x80 && (first >> 3) >= 1 && (first & 7) is 0 or 2;
}
