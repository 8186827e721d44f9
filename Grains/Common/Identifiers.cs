namespace CloudEdge.Grains;

/// <summary>The one syntax for entity ids and client request ids, checked at every boundary.</summary>
public static class Identifiers
{
    public const int MaxIdLength = 64;

    public const int MaxRequestIdLength = 128;

    /// <summary>Entity ids: 1-64 characters of ASCII letters, digits, '-', '_', '.', '@', not starting with '.'.</summary>
    public static bool IsValidId(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > MaxIdLength || id[0] == '.')
        {
            return false;
        }

        foreach (var c in id)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.' or '@'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Client request ids: 1-128 printable ASCII characters (a UUID fits).</summary>
    public static bool IsValidRequestId(string? requestId)
    {
        if (string.IsNullOrEmpty(requestId) || requestId.Length > MaxRequestIdLength)
        {
            return false;
        }

        foreach (var c in requestId)
        {
            if (c is < '!' or > '~')
            {
                return false;
            }
        }

        return true;
    }

    internal static void EnsureId(string? id, string field)
    {
        if (!IsValidId(id))
        {
            throw new InvalidInputException("invalid_id", field, $"'{field}' must be 1-{MaxIdLength} characters of letters, digits, '-', '_', '.', '@'.");
        }
    }

    internal static void EnsureRequestId(string? requestId)
    {
        if (!IsValidRequestId(requestId))
        {
            throw new InvalidInputException("invalid_request_id", "requestId", $"A client request id of 1-{MaxRequestIdLength} printable ASCII characters is required.");
        }
    }
}
