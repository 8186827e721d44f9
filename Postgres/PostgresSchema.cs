using System.Reflection;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CloudEdge.Postgres;

/// <summary>
/// Brings a database up to the platform's schema: applies the embedded scripts under Migrations/ in
/// ordinal file-name order and records each one (name and SHA-256) in <c>cloudedge_schema_migrations</c>.
/// </summary>
/// <remarks>
/// Every script is idempotent, so a script is simply run again when its text changed. A session-level
/// advisory lock serialises migrators: several Silos starting at once against one database apply each
/// script once, and none of them sees a half-made schema.
/// </remarks>
public static class PostgresSchema
{
    /// <summary>The advisory lock key (the ASCII of "cldedgem"): one per database.</summary>
    internal const long AdvisoryLockKey = 0x636C64656467656D;

    private const string ResourcePrefix = "CloudEdge.Postgres.Migrations.";

    public static async Task MigrateAsync(string connectionString, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        logger ??= NullLogger.Instance;
        var scripts = LoadScripts();

        // Its own pool-free connection: the lock belongs to the session, and a pooled session that outlived
        // a failed unlock would keep other migrators waiting.
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync(cancellationToken);

        await ExecuteAsync(connection, null, $"SELECT pg_advisory_lock({AdvisoryLockKey})", cancellationToken);
        try
        {
            await ExecuteAsync(connection, null, """
                CREATE TABLE IF NOT EXISTS cloudedge_schema_migrations
                (
                    name       text        NOT NULL PRIMARY KEY,
                    sha256     text        NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """, cancellationToken);

            var applied = await ReadAppliedAsync(connection, cancellationToken);
            foreach (var script in scripts)
            {
                if (applied.TryGetValue(script.Name, out var sha256) && sha256 == script.Sha256)
                {
                    continue;
                }

                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await ExecuteAsync(connection, transaction, script.Text, cancellationToken);
                await using (var record = new NpgsqlCommand("""
                    INSERT INTO cloudedge_schema_migrations (name, sha256, applied_at) VALUES (@name, @sha256, now())
                    ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, applied_at = EXCLUDED.applied_at
                    """, connection, transaction))
                {
                    record.Parameters.AddWithValue("name", script.Name);
                    record.Parameters.AddWithValue("sha256", script.Sha256);
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }

                await transaction.CommitAsync(cancellationToken);
                logger.LogInformation("Applied schema script {Script} ({Sha256}){Reason}", script.Name, script.Sha256,
                    applied.ContainsKey(script.Name) ? " again: its text changed" : "");
            }
        }
        finally
        {
            // Unlocking on a broken connection is pointless: closing it ends the session and its lock.
            if (connection.FullState == System.Data.ConnectionState.Open)
            {
                await ExecuteAsync(connection, null, $"SELECT pg_advisory_unlock({AdvisoryLockKey})", CancellationToken.None);
            }
        }
    }

    /// <summary>The embedded scripts in the order they are applied.</summary>
    internal static IReadOnlyList<MigrationScript> LoadScripts()
    {
        var assembly = typeof(PostgresSchema).Assembly;
        return assembly.GetManifestResourceNames()
            .Where(name => name.StartsWith(ResourcePrefix, StringComparison.Ordinal) && name.EndsWith(".sql", StringComparison.Ordinal))
            .Select(name => MigrationScript.Read(assembly, name, name[ResourcePrefix.Length..]))
            .OrderBy(script => script.Name, StringComparer.Ordinal)
            .ToList();
    }

    private static async Task<Dictionary<string, string>> ReadAppliedAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var applied = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var command = new NpgsqlCommand("SELECT name, sha256 FROM cloudedge_schema_migrations", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            applied[reader.GetString(0)] = reader.GetString(1);
        }

        return applied;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}

/// <summary>One embedded migration script: its file name (the ordering key), text and SHA-256 (hex).</summary>
internal sealed record MigrationScript(string Name, string Text, string Sha256)
{
    public static MigrationScript Read(Assembly assembly, string resourceName, string name)
    {
        using var stream = assembly.GetManifestResourceStream(resourceName)
            ?? throw new InvalidOperationException($"Embedded schema script {resourceName} is missing.");
        using var reader = new StreamReader(stream);
        var text = reader.ReadToEnd();
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)));
        return new MigrationScript(name, text, sha256);
    }
}
