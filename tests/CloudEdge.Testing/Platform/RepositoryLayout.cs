using System.Net;
using System.Net.Sockets;

namespace CloudEdge.Testing.Platform;

/// <summary>Where the repository and the built hosts are, seen from a test or benchmark binary.</summary>
public static class RepositoryLayout
{
    /// <summary>The folder holding CloudEdge.sln, found by walking up from the running binary.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>"Release" when the running binary was built in Release, else "Debug": hosts are used from the same configuration.</summary>
    public static string Configuration { get; } =
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";

    /// <summary>A built assembly of the repository, e.g. <c>BuiltDll("Silo", "CloudEdge.Silo")</c>.</summary>
    public static string BuiltDll(string projectFolder, string assemblyName)
    {
        var dll = Path.Combine(Root, projectFolder, "bin", Configuration, "net10.0", assemblyName + ".dll");
        return File.Exists(dll)
            ? dll
            : throw new FileNotFoundException($"{assemblyName} is not built in {Configuration}: build the solution (or reference the project with ReferenceOutputAssembly=false).", dll);
    }

    /// <summary>A free TCP port on 127.0.0.1 (the OS picks it; another process could take it before use, which is rare enough for tests).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A new empty directory under the system temp folder.</summary>
    public static string NewTempDirectory(string prefix)
    {
        var path = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CloudEdge.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("CloudEdge.sln not found above " + AppContext.BaseDirectory);
    }
}
