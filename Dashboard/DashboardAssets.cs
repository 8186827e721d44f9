using System.Collections.Frozen;
using System.Reflection;
using System.Security.Cryptography;

namespace CloudEdge.Dashboard;

/// <summary>One served file: its bytes, media type and strong validator.</summary>
internal sealed record DashboardAsset(string Path, byte[] Content, string ContentType, string ETag);

/// <summary>
/// The dashboard's files, read once from this assembly's embedded resources: the Silo serves them the
/// same from a build folder, a publish folder or a container, without the repository beside it.
/// </summary>
internal sealed class DashboardAssets
{
    private const string ResourcePrefix = "dashboard/";

    private static readonly FrozenDictionary<string, string> ContentTypes = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml",
        [".json"] = "application/json",
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    private readonly FrozenDictionary<string, DashboardAsset> assets;

    private DashboardAssets(FrozenDictionary<string, DashboardAsset> assets) => this.assets = assets;

    public static DashboardAssets Shared { get; } = Load(typeof(DashboardAssets).Assembly);

    public static DashboardAssets Load(Assembly assembly)
    {
        var assets = new Dictionary<string, DashboardAsset>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames())
        {
            if (!name.StartsWith(ResourcePrefix, StringComparison.Ordinal))
            {
                continue;
            }

            var path = name[ResourcePrefix.Length..].Replace('\\', '/');
            if (!ContentTypes.TryGetValue(System.IO.Path.GetExtension(path), out var contentType))
            {
                // A file the dashboard does not know how to label is never served: nosniff would block it anyway.
                throw new InvalidOperationException($"Dashboard asset '{path}' has no known media type.");
            }

            using var stream = assembly.GetManifestResourceStream(name)
                ?? throw new InvalidOperationException($"Embedded resource '{name}' could not be opened.");
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var content = copy.ToArray();
            var etag = "\"" + Convert.ToHexStringLower(SHA256.HashData(content).AsSpan(0, 16)) + "\"";
            assets[path] = new DashboardAsset(path, content, contentType, etag);
        }

        if (!assets.ContainsKey(DashboardEndpoints.IndexPath))
        {
            throw new InvalidOperationException($"The dashboard assembly carries no {DashboardEndpoints.IndexPath}: its assets were not embedded.");
        }

        return new DashboardAssets(assets.ToFrozenDictionary(StringComparer.Ordinal));
    }

    public DashboardAsset? Find(string path) => assets.GetValueOrDefault(path);
}
