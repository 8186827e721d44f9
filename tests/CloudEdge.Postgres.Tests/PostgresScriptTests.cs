using CloudEdge.Testing.Platform;
using System.Runtime.Versioning;
using Npgsql;

namespace CloudEdge.Postgres.Tests;

/// <summary>tools/postgres.sh, the private instance tools/run-platform.sh starts: run as a process, as the platform does.</summary>
[SupportedOSPlatform("linux")]
public sealed class PostgresScriptTests : IAsyncLifetime
{
    private readonly string directory = RepositoryLayout.NewTempDirectory("cloudedge-pgsh");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await RunAsync("stop");
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task Start_creates_an_instance_whose_data_survives_a_stop_and_a_start()
    {
        var started = await RunAsync("start");
        Assert.Equal(0, started.ExitCode);
        var passwordFile = Path.Combine(directory, "password");
        var password = await File.ReadAllTextAsync(passwordFile);
        Assert.True(password.Length >= 24);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(passwordFile));
        Assert.DoesNotContain(password, started.StdoutText + started.Stderr);

        var status = await RunAsync("status");
        Assert.Equal(0, status.ExitCode);
        Assert.DoesNotContain(password, status.StdoutText);
        Assert.Contains(passwordFile, status.StdoutText);
        var port = int.Parse(await File.ReadAllTextAsync(Path.Combine(directory, "port")));
        Assert.Contains($"Host=127.0.0.1;Port={port};Username=cloudedge;Database=cloudedge", status.StdoutText);

        var connectionString = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = port,
            Username = "cloudedge",
            Password = password,
            Database = "cloudedge",
            Pooling = false,
        }.ConnectionString;
        await PostgresSchema.MigrateAsync(connectionString);
        await Sql.ExecuteAsync(connectionString, "INSERT INTO orleansquery (querykey, querytext) VALUES ('ProbeKey', 'kept')");

        Assert.Equal(0, (await RunAsync("start")).ExitCode);
        Assert.Equal(0, (await RunAsync("stop")).ExitCode);
        Assert.Equal(3, (await RunAsync("status")).ExitCode);
        Assert.Equal(0, (await RunAsync("stop")).ExitCode);
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => Sql.ExecuteAsync(connectionString, "SELECT 1"));

        Assert.Equal(0, (await RunAsync("start")).ExitCode);
        Assert.Equal(port, int.Parse(await File.ReadAllTextAsync(Path.Combine(directory, "port"))));
        Assert.Equal(password, await File.ReadAllTextAsync(passwordFile));
        Assert.Equal("kept", await Sql.ScalarAsync<string>(connectionString, "SELECT querytext FROM orleansquery WHERE querykey = 'ProbeKey'"));
        await PostgresSchema.MigrateAsync(connectionString);
    }

    [Fact]
    public async Task A_wrong_command_is_refused_with_usage()
    {
        var result = await RunAsync("restart");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("usage:", result.Stderr);
    }

    private Task<ProcessResult> RunAsync(string command) =>
        ExternalProcess.RunAsync("bash", [Path.Combine(RepositoryLayout.Root, "tools", "postgres.sh"), command, directory], TimeSpan.FromMinutes(3));
}
