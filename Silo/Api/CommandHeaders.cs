using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CloudEdge.Grains;

namespace CloudEdge.Silo.Api;

/// <summary>Reads the client request id (Idempotency-Key) and the expected version (If-Match) of a command.</summary>
internal static class CommandHeaders
{
    public const string IdempotencyKey = "Idempotency-Key";

    /// <summary>The request id from the Idempotency-Key header or the body's requestId; one of them is required.</summary>
    public static string RequestId(HttpContext context, string? bodyRequestId)
    {
        var header = context.Request.Headers[IdempotencyKey];
        if (header.Count > 1)
        {
            throw new InvalidInputException("invalid_idempotency_key", IdempotencyKey, "Send one Idempotency-Key header.");
        }

        var fromHeader = header.Count == 1 ? header[0] : null;
        if (fromHeader is not null && bodyRequestId is not null && !string.Equals(fromHeader, bodyRequestId, StringComparison.Ordinal))
        {
            throw new InvalidInputException("idempotency_key_mismatch", IdempotencyKey, "The Idempotency-Key header and the body's requestId differ.");
        }

        var requestId = fromHeader ?? bodyRequestId;
        if (requestId is null)
        {
            throw new InvalidInputException("idempotency_key_required", IdempotencyKey,
                "Commands need a client request id: send an Idempotency-Key header (a UUID, say) or a requestId field, and reuse it when retrying.");
        }

        if (!Identifiers.IsValidRequestId(requestId))
        {
            throw new InvalidInputException("invalid_idempotency_key", IdempotencyKey, $"The Idempotency-Key must be 1-{Identifiers.MaxRequestIdLength} printable ASCII characters.");
        }

        return requestId;
    }

    /// <summary>The version from If-Match (<c>"3"</c>, <c>W/"3"</c> or <c>3</c>) or the body's expectedVersion; null when neither is given.</summary>
    public static long? ExpectedVersion(HttpContext context, long? bodyVersion)
    {
        var header = context.Request.Headers.IfMatch;
        if (header.Count == 0)
        {
            return bodyVersion;
        }

        var text = header.Count == 1 ? header[0]!.Trim() : string.Empty;
        if (text.StartsWith("W/", StringComparison.Ordinal))
        {
            text = text[2..];
        }

        text = text.Trim('"');
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var version))
        {
            throw new InvalidInputException("invalid_if_match", "If-Match", "If-Match must hold one version ETag as returned by GET, such as \"3\".");
        }

        if (bodyVersion is not null && bodyVersion != version)
        {
            throw new InvalidInputException("if_match_mismatch", "If-Match", "The If-Match header and the body's expectedVersion differ.");
        }

        return version;
    }

    public static void SetETag(HttpContext context, long version) =>
        context.Response.Headers.ETag = $"\"{version.ToString(CultureInfo.InvariantCulture)}\"";

    /// <summary>
    /// An order id derived from the user and the request id, so that a retried create without an
    /// explicit order id reaches the same order grain and gets the first result back.
    /// </summary>
    public static string DeriveOrderId(string userId, string requestId)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(userId + "\n" + requestId));
        return "ord-" + Convert.ToHexStringLower(hash.AsSpan(0, 12));
    }

    public static void EnsureId(string? id, string field)
    {
        if (!Identifiers.IsValidId(id))
        {
            throw new InvalidInputException("invalid_id", field, $"'{field}' must be 1-{Identifiers.MaxIdLength} characters of letters, digits, '-', '_', '.', '@'.");
        }
    }
}
