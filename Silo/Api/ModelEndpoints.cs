using System.Text;
using CloudEdge.Grains;
using CloudEdge.Silo.Auth;
using CloudEdge.Silo.Edge;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace CloudEdge.Silo.Api;

/// <summary>The model registry for OTA: upload (admin), manifest and content-addressed bytes (admin and gateways).</summary>
internal static class ModelEndpoints
{
    public const string ManifestHeader = "X-Model-Manifest";

    public static void MapModelEndpoints(this RouteGroupBuilder api)
    {
        var models = api.MapGroup("/models").WithTags("Models");

        models.MapPut("/{name}/{version}", async (string name, string version, HttpContext http, [FromServices] IGrainFactory grains,
            [FromServices] ModelBlobStore blobs, [FromServices] IOptions<EdgeOptions> options, [FromServices] TimeProvider time) =>
        {
            CommandHeaders.EnsureId(name, "name");
            CommandHeaders.EnsureId(version, "version");
            Caller.From(http.User).EnsureAdmin("upload models");
            if (string.Equals(name, "blobs", StringComparison.Ordinal))
            {
                throw new InvalidInputException("reserved_name", "name", "'blobs' is reserved for the blob route.");
            }

            var started = time.GetUtcNow();
            var (blob, manifest) = await ReadUpload(http, blobs, options.Value.MaxModelBytes);
            if (ManifestSha256(manifest) is { } declared && !string.Equals(declared, blob.Sha256, StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidInputException("sha256_mismatch", "manifest.sha256", $"The manifest names sha256 {declared}, the bytes hash to {blob.Sha256}.");
            }

            var view = await grains.GetGrain<IModelGrain>(ModelKey.Of(name, version))
                .Register(new RegisterModel(name, version, blob.Sha256, blob.Size, manifest ?? "{}"));
            http.Response.Headers.ETag = $"\"{view.Sha256}\"";
            var response = ModelResponse.From(view);
            return view.RegisteredAt >= started
                ? Results.Created($"/api/v1/models/{Uri.EscapeDataString(name)}/{Uri.EscapeDataString(version)}", response)
                : Results.Ok(response);
        })
        .WithName("UploadModel")
        .WithSummary("Uploads a model version (admin): the .onnx bytes as application/octet-stream with an optional X-Model-Manifest header (JSON, or base64 of it), or multipart/form-data with parts 'model' and 'manifest'.")
        .WithDescription("201 when registered, 200 when the same bytes were registered before, 409 model_version_exists for other bytes. The bytes are checked for size and a protobuf start only; the agent loads them.")
        .Accepts<byte[]>("application/octet-stream", "multipart/form-data")
        .Produces<ModelResponse>(StatusCodes.Status201Created)
        .Produces<ModelResponse>()
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status403Forbidden)
        .ProducesProblem(StatusCodes.Status409Conflict)
        .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
        .ProducesProblem(StatusCodes.Status415UnsupportedMediaType);

        models.MapGet("/{name}/{version}", async (string name, string version, HttpContext http, [FromServices] IGrainFactory grains) =>
        {
            CommandHeaders.EnsureId(name, "name");
            CommandHeaders.EnsureId(version, "version");
            EnsureAdminOrGateway(http);
            var view = await grains.GetGrain<IModelGrain>(ModelKey.Of(name, version)).Get();
            http.Response.Headers.ETag = $"\"{view.Sha256}\"";
            return TypedResults.Ok(ModelResponse.From(view));
        })
        .WithName("GetModel")
        .WithSummary("A model version's sha256, size, blob path and manifest (admin or gateway role).")
        .ProducesProblem(StatusCodes.Status403Forbidden)
        .ProducesProblem(StatusCodes.Status404NotFound);

        models.MapGet("/blobs/{sha256}", (string sha256, HttpContext http, [FromServices] ModelBlobStore blobs) =>
        {
            EnsureAdminOrGateway(http);
            if (!ModelBlobStore.IsSha256(sha256))
            {
                throw new InvalidInputException("invalid_sha256", "sha256", "A blob is named by 64 lower-case hex digits.");
            }

            var path = blobs.Find(sha256) ?? throw new EntityNotFoundException("blob_not_found", $"No model bytes with sha256 {sha256}.");
            // Content-addressed bytes never change: cache forever; If-None-Match and Range are answered by the file result.
            http.Response.Headers.CacheControl = "private, max-age=31536000, immutable";
            return TypedResults.PhysicalFile(path, "application/octet-stream", entityTag: new EntityTagHeaderValue($"\"{sha256}\""), enableRangeProcessing: true);
        })
        .WithName("GetModelBlob")
        .WithSummary("The bytes of a model by sha256 (admin or gateway role): immutable, ETag \"<sha256>\", ranges supported.")
        .Produces(StatusCodes.Status200OK, contentType: "application/octet-stream")
        .Produces(StatusCodes.Status304NotModified)
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status404NotFound);
    }

    private static void EnsureAdminOrGateway(HttpContext http)
    {
        var caller = Caller.From(http.User);
        if (!caller.IsAdmin && !caller.IsGateway)
        {
            throw new AccessDeniedException($"Only the '{Roles.Gateway}' or '{Roles.Admin}' role may read models.");
        }
    }

    private static async Task<(StoredBlob Blob, string? Manifest)> ReadUpload(HttpContext http, ModelBlobStore blobs, long maxBytes)
    {
        var request = http.Request;
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType))
        {
            throw new RequestRejectedException(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type", "Send application/octet-stream or multipart/form-data.");
        }

        if (request.ContentLength > maxBytes + ModelGrain.MaxManifestLength * 2L)
        {
            throw new RequestRejectedException(StatusCodes.Status413PayloadTooLarge, "model_too_large", $"A model is at most {maxBytes} bytes.");
        }

        if (http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = maxBytes + ModelGrain.MaxManifestLength * 2L;
        }

        if (mediaType.MediaType.Equals("application/octet-stream", StringComparison.OrdinalIgnoreCase))
        {
            var manifest = request.Headers[ManifestHeader].ToString() is { Length: > 0 } header ? DecodeManifestHeader(header) : null;
            return (await blobs.SaveAsync(request.Body, maxBytes, http.RequestAborted), manifest);
        }

        if (!mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value is not { Length: > 0 } boundary)
        {
            throw new RequestRejectedException(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type", "Send application/octet-stream or multipart/form-data (with a boundary).");
        }

        var reader = new MultipartReader(boundary, request.Body);
        StoredBlob? stored = null;
        string? manifestPart = null;
        while (await reader.ReadNextSectionAsync(http.RequestAborted) is { } section)
        {
            var name = ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
                ? HeaderUtilities.RemoveQuotes(disposition.Name).Value
                : null;
            if (name == "model" && stored is null)
            {
                stored = await blobs.SaveAsync(section.Body, maxBytes, http.RequestAborted);
            }
            else if (name == "manifest" && manifestPart is null)
            {
                using var text = new StreamReader(section.Body, Encoding.UTF8);
                var buffer = new char[ModelGrain.MaxManifestLength + 1];
                var read = await text.ReadBlockAsync(buffer, http.RequestAborted);
                if (read > ModelGrain.MaxManifestLength)
                {
                    throw new InvalidInputException("manifest_too_large", "manifest", $"A manifest is at most {ModelGrain.MaxManifestLength} characters.");
                }

                manifestPart = new string(buffer, 0, read);
            }
        }

        return stored is { } blob
            ? (blob, manifestPart)
            : throw new InvalidInputException("missing_model", "model", "The multipart body has no 'model' part with the .onnx bytes.");
    }

    /// <summary>The manifest header holds JSON, or base64 of JSON (for manifests that are not plain ASCII).</summary>
    private static string DecodeManifestHeader(string header)
    {
        var trimmed = header.Trim();
        if (trimmed.StartsWith('{'))
        {
            return trimmed;
        }

        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(trimmed));
        }
        catch (FormatException)
        {
            throw new InvalidInputException("invalid_manifest", ManifestHeader, $"{ManifestHeader} holds a JSON object or base64 of one.");
        }
    }

    /// <summary>The manifest's "sha256" field, if it has one, to check against the bytes.</summary>
    private static string? ManifestSha256(string? manifest)
    {
        if (manifest is null)
        {
            return null;
        }

        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(manifest);
            return document.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                && document.RootElement.TryGetProperty("sha256", out var sha) && sha.ValueKind == System.Text.Json.JsonValueKind.String
                ? sha.GetString()
                : null;
        }
        catch (System.Text.Json.JsonException)
        {
            throw new InvalidInputException("invalid_manifest", "manifest", "The manifest is not valid JSON.");
        }
    }
}
