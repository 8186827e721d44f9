using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace CloudEdge.Onnx.Native;

/// <summary>
/// One loaded ONNX Runtime shared library and its C API table. Loaded once per resolved path and kept for the
/// life of the process: ONNX Runtime owns thread pools and static state that do not survive an unload, and
/// every handle this binding hands out calls through the table.
/// </summary>
internal sealed unsafe class OrtLibrary
{
    public const string FileName = "libonnxruntime.so.1";
    public const string PathVariable = "CLOUDEDGE_ONNXRUNTIME_PATH";

    private static readonly ConcurrentDictionary<string, Lazy<OrtLibrary>> Loaded = new(StringComparer.Ordinal);

    private OrtLibrary(string path, OrtApi api, string version)
    {
        Path = path;
        Api = api;
        Version = version;
    }

    public string Path { get; }
    public OrtApi Api { get; }
    public string Version { get; }

    /// <summary>Resolves the library (see <see cref="Resolve"/>) and loads it once.</summary>
    public static OrtLibrary Load(string? configuredPath)
    {
        var path = Resolve(configuredPath, Environment.GetEnvironmentVariable(PathVariable), AppContext.BaseDirectory,
            RuntimeInformation.ProcessArchitecture);
        var lazy = Loaded.GetOrAdd(path, p => new Lazy<OrtLibrary>(() => LoadFrom(p)));
        try
        {
            return lazy.Value;
        }
        catch
        {
            // A failed load is not cached: the file may be fetched and the call retried.
            Loaded.TryRemove(new KeyValuePair<string, Lazy<OrtLibrary>>(path, lazy));
            throw;
        }
    }

    /// <summary>
    /// Where the library is: an explicitly configured path, else the <c>CLOUDEDGE_ONNXRUNTIME_PATH</c> variable,
    /// else the application's <c>runtimes/&lt;rid&gt;/native/</c> folder (where the CloudEdge.Onnx build puts it),
    /// else the application folder itself (a RID-specific publish flattens native assets there). A configured
    /// path or variable that names a missing file is an error rather than a fallback: it was asked for.
    /// </summary>
    internal static string Resolve(string? configuredPath, string? variablePath, string baseDirectory, Architecture architecture)
    {
        if (!string.IsNullOrWhiteSpace(configuredPath))
        {
            var full = System.IO.Path.GetFullPath(configuredPath);
            return File.Exists(full) ? full : throw OnnxRuntimeLibraryException.NotFound([full], "the configured library path");
        }
        if (!string.IsNullOrWhiteSpace(variablePath))
        {
            var full = System.IO.Path.GetFullPath(variablePath);
            return File.Exists(full) ? full : throw OnnxRuntimeLibraryException.NotFound([full], $"the {PathVariable} environment variable");
        }
        var tried = new List<string>();
        var rid = architecture switch
        {
            Architecture.X64 => "linux-x64",
            Architecture.Arm64 => "linux-arm64",
            _ => null,
        };
        if (rid is not null && OperatingSystem.IsLinux())
        {
            tried.Add(System.IO.Path.Combine(baseDirectory, "runtimes", rid, "native", FileName));
        }
        tried.Add(System.IO.Path.Combine(baseDirectory, FileName));
        foreach (var candidate in tried)
        {
            if (File.Exists(candidate)) return candidate;
        }
        throw OnnxRuntimeLibraryException.NotFound(tried, "the application folder");
    }

    private static OrtLibrary LoadFrom(string path)
    {
        nint handle;
        try
        {
            handle = NativeLibrary.Load(path);
        }
        catch (DllNotFoundException e)
        {
            throw new OnnxRuntimeLibraryException(
                $"ONNX Runtime at '{path}' could not be loaded: {e.Message}. It needs glibc (not musl) and the " +
                $"architecture of this process ({RuntimeInformation.ProcessArchitecture}).", e);
        }
        catch (BadImageFormatException e)
        {
            throw new OnnxRuntimeLibraryException(
                $"'{path}' is not an ONNX Runtime library for {RuntimeInformation.ProcessArchitecture}: {e.Message}", e);
        }

        if (!NativeLibrary.TryGetExport(handle, "OrtGetApiBase", out var getApiBase))
        {
            throw new OnnxRuntimeLibraryException($"'{path}' does not export OrtGetApiBase: it is not an ONNX Runtime library.");
        }
        // struct OrtApiBase { const OrtApi* (*GetApi)(uint32_t); const char* (*GetVersionString)(void); }
        var apiBase = ((delegate* unmanaged<nint*>)getApiBase)();
        var getApi = (delegate* unmanaged<uint, nint*>)apiBase[0];
        var getVersion = (delegate* unmanaged<byte*>)apiBase[1];
        var version = Marshal.PtrToStringUTF8((nint)getVersion()) ?? "unknown";
        var table = getApi(OrtApi.Version);
        if (table is null)
        {
            throw new OnnxRuntimeLibraryException(
                $"ONNX Runtime {version} at '{path}' does not provide C API version {OrtApi.Version}; CloudEdge.Onnx " +
                $"needs ONNX Runtime 1.23 or newer. Run tools/fetch-onnxruntime.sh to get 1.23.0.");
        }
        return new OrtLibrary(path, new OrtApi(table), version);
    }
}
