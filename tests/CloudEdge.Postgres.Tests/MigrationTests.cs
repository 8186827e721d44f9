using System.Reflection;
using System.Text.RegularExpressions;
using Npgsql;

namespace CloudEdge.Postgres.Tests;

/// <summary>The migrator against fresh, unmigrated databases of the shared server.</summary>
public sealed class MigrationTests
{
    [Fact]
    public async Task Migrating_twice_applies_each_script_once_and_records_name_and_sha256()
    {
        var connectionString = await NewEmptyDatabaseAsync();

        await PostgresSchema.MigrateAsync(connectionString);
        var first = await ReadRecordsAsync(connectionString);
        await PostgresSchema.MigrateAsync(connectionString);
        var second = await ReadRecordsAsync(connectionString);

        var expected = PostgresSchema.LoadScripts();
        Assert.Equal(["0100_orleans_query.sql", "0200_clustering.sql", "0300_persistence.sql", "0400_reminders.sql"],
            expected.Select(script => script.Name).Where(name => string.CompareOrdinal(name, "0500") < 0));
        Assert.Equal(expected.Select(script => (script.Name, script.Sha256)), first.Select(record => (record.Name, record.Sha256)));
        // The second run changed nothing: same hashes, same application times.
        Assert.Equal(first, second);
    }

    [Fact]
    public async Task Concurrent_migrators_all_succeed_and_apply_each_script_once()
    {
        var connectionString = await NewEmptyDatabaseAsync();

        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => PostgresSchema.MigrateAsync(connectionString))));

        var records = await ReadRecordsAsync(connectionString);
        Assert.Equal(PostgresSchema.LoadScripts().Select(script => script.Name), records.Select(record => record.Name));
        Assert.Equal(4L, await Sql.ScalarAsync<long>(connectionString,
            "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('orleansquery', 'orleans_membership', 'orleans_storage', 'orleans_reminders')"));
    }

    [Fact]
    public async Task A_migrator_waits_for_the_advisory_lock_another_session_holds()
    {
        var connectionString = await NewEmptyDatabaseAsync();
        await using var holder = new NpgsqlConnection(connectionString);
        await holder.OpenAsync();
        await using (var take = new NpgsqlCommand($"SELECT pg_advisory_lock({PostgresSchema.AdvisoryLockKey})", holder))
        {
            await take.ExecuteNonQueryAsync();
        }

        var migration = PostgresSchema.MigrateAsync(connectionString);
        await Wait.UntilAsync(async () => await Sql.ScalarAsync<long>(connectionString,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == 1, "the migrator to wait for the lock");
        Assert.False(migration.IsCompleted);
        Assert.Equal(0L, await Sql.ScalarAsync<long>(connectionString,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'cloudedge_schema_migrations'"));

        await using (var release = new NpgsqlCommand($"SELECT pg_advisory_unlock({PostgresSchema.AdvisoryLockKey})", holder))
        {
            await release.ExecuteNonQueryAsync();
        }

        await migration.WaitAsync(Wait.Long);
        Assert.Equal(PostgresSchema.LoadScripts().Count, (await ReadRecordsAsync(connectionString)).Count);
    }

    [Fact]
    public async Task A_script_whose_text_changed_is_applied_again()
    {
        var connectionString = await NewEmptyDatabaseAsync();
        await PostgresSchema.MigrateAsync(connectionString);
        var before = await ReadRecordsAsync(connectionString);

        // What an older version of 0300 would have left: another query text, another recorded hash.
        await Sql.ExecuteAsync(connectionString, "UPDATE orleansquery SET querytext = 'SELECT 1' WHERE querykey = 'WriteToStorageKey'");
        await Sql.ExecuteAsync(connectionString, "UPDATE cloudedge_schema_migrations SET sha256 = 'an-older-text' WHERE name = '0300_persistence.sql'");

        await PostgresSchema.MigrateAsync(connectionString);

        var after = await ReadRecordsAsync(connectionString);
        Assert.Equal(before.Select(record => (record.Name, record.Sha256)), after.Select(record => (record.Name, record.Sha256)));
        Assert.True(after.Single(record => record.Name == "0300_persistence.sql").AppliedAt > before.Single(record => record.Name == "0300_persistence.sql").AppliedAt);
        Assert.Equal(before.Where(record => record.Name != "0300_persistence.sql"), after.Where(record => record.Name != "0300_persistence.sql"));
        Assert.Contains("NewGrainStateVersion", await Sql.ScalarAsync<string>(connectionString, "SELECT querytext FROM orleansquery WHERE querykey = 'WriteToStorageKey'"));
    }

    [Fact]
    public async Task The_installed_query_keys_are_exactly_those_the_Orleans_providers_read()
    {
        var connectionString = await NewEmptyDatabaseAsync();
        await PostgresSchema.MigrateAsync(connectionString);
        var installed = new SortedSet<string>(await ReadKeysAsync(connectionString), StringComparer.Ordinal);

        var clustering = RequiredKeys(typeof(Orleans.Runtime.MembershipService.AdoNetClusteringTable).Assembly);
        var reminders = RequiredKeys(typeof(Orleans.Configuration.AdoNetReminderTableOptions).Assembly);
        var storageQuery = (string)typeof(Orleans.Storage.AdoNetGrainStorage).GetField("DefaultInitializationQuery")!.GetValue(null)!;
        var storage = Regex.Matches(storageQuery, @"'(\w+Key)'").Select(match => match.Groups[1].Value).ToList();

        Assert.Equal(9, clustering.Count);
        Assert.Equal(7, reminders.Count);
        Assert.Equal(4, storage.Count);
        var required = new SortedSet<string>(clustering.Concat(reminders).Concat(storage), StringComparer.Ordinal);
        Assert.Subset(installed, required);

        // The Orleans scripts define exactly these keys, nothing a provider would never read (later scripts,
        // such as the stream provider's, may add queries of their own).
        var ownScripts = PostgresSchema.LoadScripts().Where(script => string.CompareOrdinal(script.Name, "0500") < 0);
        var defined = ownScripts.SelectMany(script => Regex.Matches(script.Text, @"^\('(\w+Key)',", RegexOptions.Multiline).Select(match => match.Groups[1].Value));
        Assert.Equal(required, new SortedSet<string>(defined, StringComparer.Ordinal));
    }

    [Fact]
    public async Task Bad_connection_settings_fail_with_a_clear_error()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => PostgresSchema.MigrateAsync(" "));

        var server = await PostgresServer.SharedAsync();
        var wrongPassword = new NpgsqlConnectionStringBuilder(server.AdminConnectionString) { Password = "not-the-password" }.ConnectionString;
        var failure = await Assert.ThrowsAsync<PostgresException>(() => PostgresSchema.MigrateAsync(wrongPassword));
        Assert.Equal(PostgresErrorCodes.InvalidPassword, failure.SqlState);
    }

    /// <summary>The keys a provider assembly's DbStoredQueries demands at start (its internal *Key properties).</summary>
    private static List<string> RequiredKeys(Assembly assembly)
    {
        var storedQueries = assembly.GetTypes().Single(type => type.Name == "DbStoredQueries");
        return storedQueries.GetProperties(BindingFlags.Instance | BindingFlags.NonPublic).Select(property => property.Name).ToList();
    }

    private static async Task<string> NewEmptyDatabaseAsync()
    {
        var server = await PostgresServer.SharedAsync();
        var name = $"migration_{Guid.NewGuid():N}";
        await Sql.ExecuteAsync(server.AdminConnectionString, $"CREATE DATABASE \"{name}\"");
        return new NpgsqlConnectionStringBuilder(server.AdminConnectionString) { Database = name }.ConnectionString;
    }

    private sealed record MigrationRecord(string Name, string Sha256, DateTime AppliedAt);

    private static Task<List<MigrationRecord>> ReadRecordsAsync(string connectionString) =>
        Sql.ReadAsync(connectionString, "SELECT name, sha256, applied_at FROM cloudedge_schema_migrations ORDER BY name",
            reader => new MigrationRecord(reader.GetString(0), reader.GetString(1), reader.GetDateTime(2)));

    private static Task<List<string>> ReadKeysAsync(string connectionString) =>
        Sql.ReadAsync(connectionString, "SELECT querykey FROM orleansquery", reader => reader.GetString(0));
}
