using System.IO.Compression;
using System.Text.Json;
using CloudEdge.Silo.Api;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Net.Http.Headers;

namespace CloudEdge.Silo.Edge;

/// <summary>
/// Reads an uplink body: JSON, identity or gzip, at most <see cref="EdgeOptions.MaxUplinkBytes"/>
/// before and after decompression and <see cref="EdgeOptions.MaxUplinkItems"/> items. Whole-request
/// problems throw <see cref="RequestRejectedException"/>; an item that does not bind is kept as
/// unreadable so that it alone is rejected.
/// </summary>
internal static class UplinkReader
{
    /// <summary>One item as read: bound, or unreadable with whatever id it had.</summary>
    public readonly record struct RawItem(UplinkItemRequest? Item, string? Id);

    public static async Task<IReadOnlyList<RawItem>> ReadAsync(HttpContext http, EdgeOptions options, JsonSerializerOptions json, CancellationToken cancellationToken)
    {
        var request = http.Request;
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType)
            || !(mediaType.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) || mediaType.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase)))
        {
            throw new RequestRejectedException(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type", "An uplink body is application/json.");
        }

        var encodings = request.Headers.ContentEncoding.SelectMany(v => (v ?? string.Empty).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();
        var gzip = encodings switch
        {
            [] => false,
            [var one] when one.Equals("identity", StringComparison.OrdinalIgnoreCase) => false,
            [var one] when one.Equals("gzip", StringComparison.OrdinalIgnoreCase) => true,
            _ => throw new RequestRejectedException(StatusCodes.Status415UnsupportedMediaType, "unsupported_encoding", "Content-Encoding is gzip or identity."),
        };

        if (request.ContentLength > options.MaxUplinkBytes)
        {
            throw TooLarge(options);
        }

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = options.MaxUplinkBytes;
        }

        byte[] body;
        try
        {
            if (gzip)
            {
                await using var source = new GZipStream(request.Body, CompressionMode.Decompress, leaveOpen: true);
                body = await ReadBounded(source, options, cancellationToken);
            }
            else
            {
                body = await ReadBounded(request.Body, options, cancellationToken);
            }
        }
        catch (InvalidDataException)
        {
            throw new RequestRejectedException(StatusCodes.Status400BadRequest, "malformed_request", "The body is not valid gzip.");
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw TooLarge(options);
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body);
        }
        catch (JsonException e)
        {
            throw new RequestRejectedException(StatusCodes.Status400BadRequest, "malformed_request", $"The body is not valid JSON: {e.Message}");
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !TryGetProperty(document.RootElement, "items", out var items)
                || items.ValueKind != JsonValueKind.Array)
            {
                throw new RequestRejectedException(StatusCodes.Status400BadRequest, "malformed_request", "The body is an object with an 'items' array.");
            }

            if (items.GetArrayLength() > options.MaxUplinkItems)
            {
                throw new RequestRejectedException(StatusCodes.Status413PayloadTooLarge, "too_many_items", $"An uplink carries at most {options.MaxUplinkItems} items; send the rest in another request.");
            }

            var result = new List<RawItem>(items.GetArrayLength());
            foreach (var element in items.EnumerateArray())
            {
                result.Add(Bind(element, json));
            }

            return result;
        }
    }

    private static RawItem Bind(JsonElement element, JsonSerializerOptions json)
    {
        string? id = null;
        if (element.ValueKind == JsonValueKind.Object && TryGetProperty(element, "id", out var idElement) && idElement.ValueKind == JsonValueKind.String)
        {
            id = idElement.GetString();
        }

        try
        {
            return new RawItem(element.Deserialize<UplinkItemRequest>(json), id);
        }
        catch (JsonException)
        {
            return new RawItem(null, id);
        }
    }

    private static bool TryGetProperty(JsonElement element, string name, out JsonElement value)
    {
        foreach (var property in element.EnumerateObject())
        {
            if (property.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                value = property.Value;
                return true;
            }
        }

        value = default;
        return false;
    }

    private static async Task<byte[]> ReadBounded(Stream source, EdgeOptions options, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await source.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > options.MaxUplinkBytes)
            {
                throw TooLarge(options);
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    private static RequestRejectedException TooLarge(EdgeOptions options) =>
        new(StatusCodes.Status413PayloadTooLarge, "batch_too_large", $"An uplink body is at most {options.MaxUplinkBytes} bytes, also after decompression.");
}
