using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CloudEdge.EdgePipeline.Inference;
using CloudEdge.EdgePipeline.Uplink;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudEdge.EdgePipeline.Ota;

/// <summary>Over-the-air model updates (configuration section <c>EdgeAgent:Ota</c>).</summary>
public sealed class OtaOptions
{
    public bool Enabled { get; set; } = true;
    /// <summary>Time between two polls of the desired properties.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(30);
    /// <summary>When above 0, each poll long-polls the Silo (<c>?waitSeconds=</c>) instead of returning at once.</summary>
    public int LongPollSeconds { get; set; }
}

/// <summary>The outcome of one poll.</summary>
internal enum OtaOutcome
{
    Unchanged,
    Updated,
    /// <summary>The new model was refused (checksum, load, signature, smoke run): the old one keeps running, failure reported.</summary>
    RolledBack,
    /// <summary>The Silo could not be reached; the poll is repeated.</summary>
    Unreachable,
}

/// <summary>
/// Polls the gateway's desired model (ETag / If-None-Match, optional long-poll), downloads the blob, verifies its
/// sha256, loads it in a new session, runs a smoke inference and swaps it in atomically (readings in flight finish
/// on the old session); the new model is stored under the data directory so a restart keeps it. Reports the running
/// version, or the failure after keeping the old model, with PUT reported.
/// </summary>
public sealed class ModelUpdater : BackgroundService
{
    private readonly SiloHttp _http;
    private readonly ModelSlot _slot;
    private readonly OtaOptions _options;
    private readonly string _dataDirectory;
    private readonly EdgeTelemetry _telemetry;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private string? _etag;

    internal ModelUpdater(SiloHttp http, ModelSlot slot, OtaOptions options, string dataDirectory, EdgeTelemetry telemetry, TimeProvider time, ILogger<ModelUpdater>? logger = null)
    {
        _http = http;
        _slot = slot;
        _options = options;
        _dataDirectory = dataDirectory;
        _telemetry = telemetry;
        _time = time;
        _logger = logger ?? (ILogger)NullLogger.Instance;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Enabled) return;
        var reported = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!reported) reported = await ReportAsync(_slot.Current.Name, _slot.Current.Version, "running", null, stoppingToken).ConfigureAwait(false);
                var outcome = await PollOnceAsync(stoppingToken).ConfigureAwait(false);
                if (_options.LongPollSeconds > 0 && outcome != OtaOutcome.Unreachable) continue;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                _logger.LogWarning(e, "OTA poll failed");
            }
            try
            {
                await Task.Delay(_options.PollInterval, _time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    internal async Task<OtaOutcome> PollOnceAsync(CancellationToken cancellationToken)
    {
        var path = _http.GatewayPath("desired") + (_options.LongPollSeconds > 0 ? $"?waitSeconds={_options.LongPollSeconds}" : "");
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = _http.Authorization();
        if (_etag is not null) request.Headers.TryAddWithoutValidation("If-None-Match", _etag);
        HttpResponseMessage response;
        try
        {
            response = await _http.Client.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            _logger.LogInformation("OTA: Silo unreachable: {Error}", e.Message);
            return OtaOutcome.Unreachable;
        }
        using (response)
        {
            if (response.StatusCode is HttpStatusCode.NotModified or HttpStatusCode.NotFound) return OtaOutcome.Unchanged;
            if (!response.IsSuccessStatusCode)
            {
                _logger.LogWarning("OTA: GET desired answered {Status}", (int)response.StatusCode);
                return OtaOutcome.Unreachable;
            }
            var etag = response.Headers.ETag?.ToString();
            using var desired = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
            // { "model": null } (nothing assigned) keeps the running model.
            if (!desired.RootElement.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object
                || !model.TryGetProperty("name", out var nameElement) || nameElement.GetString() is not { Length: > 0 } name
                || !model.TryGetProperty("version", out var versionElement) || versionElement.GetString() is not { Length: > 0 } version)
            {
                _etag = etag;
                return OtaOutcome.Unchanged;
            }
            var current = _slot.Current;
            if (name == current.Name && version == current.Version)
            {
                _etag = etag;
                return OtaOutcome.Unchanged;
            }
            var outcome = await ApplyAsync(name, version, cancellationToken).ConfigureAwait(false);
            // A transient failure leaves the ETag unset so the next poll tries again; a refused model waits for a new desired version.
            if (outcome != OtaOutcome.Unreachable) _etag = etag;
            return outcome;
        }
    }

    private async Task<OtaOutcome> ApplyAsync(string name, string version, CancellationToken cancellationToken)
    {
        using var span = EdgeTelemetry.Source.StartActivity("edge.ota.update");
        span?.SetTag("cloudedge.model.name", name);
        span?.SetTag("cloudedge.model.version", version);
        var previous = _slot.Current;
        string manifestJson;
        byte[] bytes;
        ModelManifest manifest;
        try
        {
            manifestJson = await GetAsync($"api/v1/models/{Uri.EscapeDataString(name)}/{Uri.EscapeDataString(version)}", r => r.ReadAsStringAsync(cancellationToken), cancellationToken).ConfigureAwait(false);
            manifest = ModelManifest.Parse(manifestJson);
            if (manifest.Sha256 is not { Length: 64 } sha256) throw new InvalidDataException("The model's manifest has no sha256.");
            bytes = await GetAsync($"api/v1/models/blobs/{sha256}", r => r.ReadAsByteArrayAsync(cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            span?.SetStatus(ActivityStatusCode.Error, e.Message);
            _logger.LogWarning("OTA: download of {Name} {Version} failed: {Error}; trying again at the next poll", name, version, e.Message);
            return OtaOutcome.Unreachable;
        }
        catch (Exception e) when (e is JsonException or FormatException or KeyNotFoundException or InvalidOperationException or InvalidDataException)
        {
            return await RollBackAsync(name, version, previous, "invalid manifest: " + e.Message, span, cancellationToken).ConfigureAwait(false);
        }

        AnomalyModel? next = null;
        try
        {
            next = ModelCheck.Verify(bytes, manifest, name, version); // sha256, contract, smoke inference: as check-model
            ActiveModel.Store(_dataDirectory, name, version, bytes, manifest);
        }
        catch (ModelRejectedException e)
        {
            return await RollBackAsync(name, version, previous, $"{e.ReasonCode}: {e.Message}", span, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            next?.Dispose();
            return await RollBackAsync(name, version, previous, e.Message, span, cancellationToken).ConfigureAwait(false);
        }
        _slot.Swap(next);
        _telemetry.OtaUpdates.Add(1, new KeyValuePair<string, object?>("outcome", "updated"));
        _logger.LogInformation("OTA: model {Name} {Version} (sha256 {Sha256}) is running; {Previous} retired", name, version, next.Sha256, previous.Version);
        await ReportAsync(name, version, "running", null, cancellationToken).ConfigureAwait(false);
        return OtaOutcome.Updated;
    }

    private async Task<OtaOutcome> RollBackAsync(string name, string version, AnomalyModel running, string error, Activity? span, CancellationToken cancellationToken)
    {
        span?.SetStatus(ActivityStatusCode.Error, error);
        _telemetry.OtaUpdates.Add(1, new KeyValuePair<string, object?>("outcome", "rolled_back"));
        _logger.LogError("OTA: model {Name} {Version} refused ({Error}); {Running} keeps running", name, version, error, running.Version);
        await ReportAsync(name, version, "failed", error, cancellationToken).ConfigureAwait(false);
        return OtaOutcome.RolledBack;
    }

    private async Task<T> GetAsync<T>(string path, Func<HttpContent, Task<T>> read, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = _http.Authorization();
        using var response = await _http.Client.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if ((int)response.StatusCode >= 500) throw new HttpRequestException($"GET {path} answered {(int)response.StatusCode}.", null, response.StatusCode);
        if (!response.IsSuccessStatusCode) throw new InvalidDataException($"GET {path} answered {(int)response.StatusCode}.");
        return await read(response.Content).ConfigureAwait(false);
    }

    /// <summary>PUT reported; false when the Silo could not be told (tried again later).</summary>
    private async Task<bool> ReportAsync(string name, string version, string status, string? error, CancellationToken cancellationToken)
    {
        var model = new Dictionary<string, object?> { ["name"] = name, ["version"] = version, ["status"] = status };
        if (error is not null)
        {
            model["error"] = error;
            model["runningVersion"] = _slot.Current.Version;
        }
        using var request = new HttpRequestMessage(HttpMethod.Put, _http.GatewayPath("reported")) { Content = JsonContent.Create(new { model }) };
        request.Headers.Authorization = _http.Authorization();
        try
        {
            using var response = await _http.Client.SendAsync(request, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode) _logger.LogWarning("OTA: PUT reported answered {Status}", (int)response.StatusCode);
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException e)
        {
            _logger.LogWarning("OTA: PUT reported failed: {Error}", e.Message);
            return false;
        }
    }
}
