using System.Runtime.Versioning;
using System.Security.Cryptography;
using CloudEdge.Postgres;
using CloudEdge.Testing.Platform;
using Npgsql;

namespace CloudEdge.Testing.Postgres;

/// <summary>
/// A private PostgreSQL instance for tests: Debian's binaries, a data directory under the temp folder,
/// listening on 127.0.0.1 only, on a free port, with scram-sha-256 password authentication for a
/// generated superuser role. Run as the <c>postgres</c> system user when the tests run as root, because
/// initdb and the server refuse root.
/// </summary>
/// <remarks>
/// The password is never on a command line: initdb reads it from a 0600 file that is deleted right
/// after. Each instance's directory is named after the test process, so a run that was killed leaves a
/// directory the next run recognises, stops (if its server is still up) and removes.
/// </remarks>
public sealed class PostgresServer : IAsyncDisposable
{
    private const string DirectoryPrefix = "cloudedge-pg-";
    private const string RoleName = "cloudedge";
    private const string SystemUser = "postgres";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(2);
    private static readonly Lazy<Task<PostgresServer>> Shared = new(() => CreateAsync());
    private static int databaseCounter;

    private readonly string root;
    private readonly string password;
    private readonly List<string> issuedConnectionStrings = [];
    private readonly SemaphoreSlim lifecycle = new(1, 1);
    private bool running;
    private bool hasStarted;
    private bool disposed;

    private PostgresServer(string root, string password, int port)
    {
        this.root = root;
        this.password = password;
        Port = port;
    }

    /// <summary>The port on 127.0.0.1; it stays the same across <see cref="StopAsync"/> and <see cref="StartAsync"/>.</summary>
    public int Port { get; private set; }

    /// <summary>The superuser's connection string to the <c>postgres</c> maintenance database.</summary>
    public string AdminConnectionString => ConnectionString("postgres");

    private string DataDirectory => Path.Combine(root, "data");

    private string SocketDirectory => Path.Combine(root, "sock");

    private string LogFile => Path.Combine(root, "postgres.log");

    /// <summary>The instance every test of this process shares, started on first use, stopped at process exit.</summary>
    public static Task<PostgresServer> SharedAsync() => Shared.Value;

    /// <summary>
    /// A new instance of the caller's own, for tests that stop the server: the shared one must stay up for
    /// every other test class running at the same time. Dispose it.
    /// </summary>
    public static async Task<PostgresServer> CreateAsync()
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("The private PostgreSQL instance needs Debian's postgresql binaries.");
        }

        var binaries = PostgresBinaries.Find();
        await RemoveStaleInstancesAsync(binaries);

        var root = Path.Combine(Path.GetTempPath(), $"{DirectoryPrefix}{Environment.ProcessId}-{Guid.NewGuid():N}");
        var password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)).Replace('+', '-').Replace('/', '_');
        await CreatePrivateDirectoryAsync(root);
        await CreatePrivateDirectoryAsync(Path.Combine(root, "sock"));

        var passwordFile = Path.Combine(root, "initdb.pw");
        await WritePrivateFileAsync(passwordFile, password);
        try
        {
            await RunAsSystemUserAsync(binaries.InitDb, root,
                "-D", Path.Combine(root, "data"), "-U", RoleName, "--pwfile", passwordFile,
                "--auth", "scram-sha-256", "--encoding", "UTF8", "--no-locale", "--no-sync", "--no-instructions");
        }
        finally
        {
            File.Delete(passwordFile);
        }

        var server = new PostgresServer(root, password, RepositoryLayout.FreePort());
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.StopAtExit();
        await server.StartAsync();
        return server;
    }

    /// <summary>A new empty database with a unique name, migrated with <see cref="PostgresSchema.MigrateAsync"/>; returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string? name = null)
    {
        var prefix = new string((name ?? "test").ToLowerInvariant().Where(char.IsAsciiLetterOrDigit).Take(40).ToArray());
        var database = $"{(prefix.Length == 0 ? "test" : prefix)}_{Interlocked.Increment(ref databaseCounter)}_{Guid.NewGuid().ToString("N")[..8]}";
        await using (var connection = new NpgsqlConnection(AdminConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{database}\"", connection);
            await command.ExecuteNonQueryAsync();
        }

        var connectionString = ConnectionString(database);
        await PostgresSchema.MigrateAsync(connectionString);
        return connectionString;
    }

    /// <summary>Starts the server again after <see cref="StopAsync"/>: same data directory, same port.</summary>
    public async Task StartAsync()
    {
        await lifecycle.WaitAsync();
        try
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (running)
            {
                return;
            }

            await StartServerAsync();
            running = true;

            // Idle pooled connections still point at the stopped server; drop them so the first command after
            // a restart does not fail on a dead socket.
            lock (issuedConnectionStrings)
            {
                foreach (var connectionString in issuedConnectionStrings)
                {
                    using var connection = new NpgsqlConnection(connectionString);
                    NpgsqlConnection.ClearPool(connection);
                }
            }
        }
        finally
        {
            lifecycle.Release();
        }
    }

    /// <summary>Stops the server (fast shutdown: sessions are ended, committed data is on disk).</summary>
    public async Task StopAsync()
    {
        await lifecycle.WaitAsync();
        try
        {
            if (!running)
            {
                return;
            }

            await RunAsSystemUserAsync(PostgresBinaries.Find().PgCtl, root, "-D", DataDirectory, "-m", "fast", "-w", "-t", "120", "stop");
            running = false;
        }
        finally
        {
            lifecycle.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (disposed)
        {
            return;
        }

        await StopAsync();
        disposed = true;
        TryDeleteDirectory(root);
    }

    private string ConnectionString(string database)
    {
        var connectionString = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = Port,
            Username = RoleName,
            Password = password,
            Database = database,
            // Many test classes each hold a pool per database; keep each pool small and short-lived so the
            // server's connection limit is never the thing a test measures.
            MaxPoolSize = 20,
            ConnectionIdleLifetime = 15,
            Timeout = 30,
        }.ConnectionString;
        lock (issuedConnectionStrings)
        {
            if (!issuedConnectionStrings.Contains(connectionString))
            {
                issuedConnectionStrings.Add(connectionString);
            }
        }

        return connectionString;
    }

    private async Task StartServerAsync()
    {
        var binaries = PostgresBinaries.Find();
        for (var attempt = 1; ; attempt++)
        {
            await WriteSettingsAsync();
            var result = await RunAsSystemUserAsync(binaries.PgCtl, root, check: false,
                "-D", DataDirectory, "-l", LogFile, "-w", "-t", "120", "start");
            if (result.ExitCode == 0)
            {
                hasStarted = true;
                return;
            }

            // Another process may have taken the free port between choosing and binding it: choose again, but
            // only before the first successful start (a restart must keep its port).
            var log = File.Exists(LogFile) ? await File.ReadAllTextAsync(LogFile) : "";
            if (attempt < 3 && log.Contains("could not bind", StringComparison.OrdinalIgnoreCase) && !hasStarted)
            {
                Port = RepositoryLayout.FreePort();
                continue;
            }

            throw new InvalidOperationException($"PostgreSQL did not start (pg_ctl exit {result.ExitCode}).\n{result.StdoutText}\n{result.Stderr}\nserver log:\n{log}");
        }
    }

    private async Task WriteSettingsAsync()
    {
        // postgresql.auto.conf is read last, so these win over the defaults initdb wrote.
        var settings = $"""
            listen_addresses = '127.0.0.1'
            port = {Port}
            unix_socket_directories = '{SocketDirectory}'
            unix_socket_permissions = 0700
            max_connections = 400
            shared_buffers = 32MB
            fsync = on
            synchronous_commit = on
            password_encryption = 'scram-sha-256'
            """;
        var path = Path.Combine(DataDirectory, "postgresql.auto.conf");
        await File.WriteAllTextAsync(path, settings + "\n");
        if (Environment.IsPrivilegedProcess)
        {
            await RunCheckedAsync("chown", [SystemUser + ":", path]);
        }
    }

    private void StopAtExit()
    {
        if (!running || disposed)
        {
            return;
        }

        // The process is ending: an immediate shutdown is enough for a throw-away test instance.
        try
        {
            RunAsSystemUserAsync(PostgresBinaries.Find().PgCtl, root, check: false, "-D", DataDirectory, "-m", "immediate", "-w", "stop")
                .GetAwaiter().GetResult();
        }
        finally
        {
            TryDeleteDirectory(root);
        }
    }

    /// <summary>Stops and removes instances whose test process is gone (a killed or crashed run).</summary>
    private static async Task RemoveStaleInstancesAsync(PostgresBinaries binaries)
    {
        foreach (var directory in Directory.EnumerateDirectories(Path.GetTempPath(), DirectoryPrefix + "*"))
        {
            var rest = Path.GetFileName(directory)[DirectoryPrefix.Length..];
            var dash = rest.IndexOf('-');
            if (dash <= 0 || !int.TryParse(rest[..dash], out var ownerPid) || ownerPid == Environment.ProcessId || Directory.Exists($"/proc/{ownerPid}"))
            {
                continue;
            }

            if (File.Exists(Path.Combine(directory, "data", "postmaster.pid")))
            {
                await RunAsSystemUserAsync(binaries.PgCtl, directory, check: false, "-D", Path.Combine(directory, "data"), "-m", "immediate", "-w", "stop");
            }

            TryDeleteDirectory(directory);
        }
    }

    private static void TryDeleteDirectory(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            // A leftover temp directory is removed by the next run's stale-instance sweep.
        }
    }

    [UnsupportedOSPlatform("windows")]
    private static async Task CreatePrivateDirectoryAsync(string path)
    {
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (Environment.IsPrivilegedProcess)
        {
            await RunCheckedAsync("chown", [SystemUser + ":", path]);
        }
    }

    [UnsupportedOSPlatform("windows")]
    private static async Task WritePrivateFileAsync(string path, string content)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite };
        await using (var stream = new FileStream(path, options))
        await using (var writer = new StreamWriter(stream))
        {
            await writer.WriteAsync(content);
        }

        if (Environment.IsPrivilegedProcess)
        {
            await RunCheckedAsync("chown", [SystemUser + ":", path]);
        }
    }

    private static Task<ProcessResult> RunAsSystemUserAsync(string binary, string workingDirectory, params string[] arguments) =>
        RunAsSystemUserAsync(binary, workingDirectory, check: true, arguments);

    private static async Task<ProcessResult> RunAsSystemUserAsync(string binary, string workingDirectory, bool check, params string[] arguments)
    {
        // PostgreSQL refuses to run as root; as anyone else the tools run as that user.
        var result = Environment.IsPrivilegedProcess
            ? await ExternalProcess.RunAsync("runuser", ["-u", SystemUser, "--", binary, .. arguments], CommandTimeout, workingDirectory)
            : await ExternalProcess.RunAsync(binary, arguments, CommandTimeout, workingDirectory);
        if (check && result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(binary)} {string.Join(' ', arguments)} failed ({result.ExitCode}):\n{result.StdoutText}\n{result.Stderr}");
        }

        return result;
    }

    private static async Task RunCheckedAsync(string command, string[] arguments)
    {
        var result = await ExternalProcess.RunAsync(command, arguments, CommandTimeout);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{command} {string.Join(' ', arguments)} failed ({result.ExitCode}): {result.Stderr}");
        }
    }
}

/// <summary>Debian's PostgreSQL server binaries (the newest installed major version), or those under <c>CLOUDEDGE_PG_BIN</c>.</summary>
internal sealed record PostgresBinaries(string InitDb, string PgCtl)
{
    public static PostgresBinaries Find()
    {
        var directory = Environment.GetEnvironmentVariable("CLOUDEDGE_PG_BIN");
        if (string.IsNullOrEmpty(directory) && Directory.Exists("/usr/lib/postgresql"))
        {
            directory = Directory.EnumerateDirectories("/usr/lib/postgresql")
                .Select(path => (Path: Path.Combine(path, "bin"), Major: int.TryParse(Path.GetFileName(path), out var major) ? major : -1))
                .Where(candidate => candidate.Major > 0 && File.Exists(Path.Combine(candidate.Path, "pg_ctl")))
                .OrderByDescending(candidate => candidate.Major)
                .Select(candidate => candidate.Path)
                .FirstOrDefault();
        }

        if (string.IsNullOrEmpty(directory) || !File.Exists(Path.Combine(directory, "pg_ctl")))
        {
            throw new InvalidOperationException("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (tools/install-deps.sh installs Debian's postgresql), and CLOUDEDGE_PG_BIN is not set.");
        }

        return new PostgresBinaries(Path.Combine(directory, "initdb"), Path.Combine(directory, "pg_ctl"));
    }
}
