namespace CloudEdge.Silo.Api;

/// <summary>The request as a whole is refused (too large, wrong encoding, unreadable): answered with its status and code.</summary>
internal sealed class RequestRejectedException(int statusCode, string code, string message) : Exception(message)
{
    public int StatusCode { get; } = statusCode;

    public string Code { get; } = code;
}
