using Microsoft.Data.Sqlite;

namespace CloudEdge.Runtime.Persistence;

/// <summary>
/// One embedded SQLite database of the runtime (grain state, reminders): pooled connections, per-connection
/// pragmas, and its schema created once, by the first connection opened (later ones skip the check).
/// </summary>
internal sealed class SqliteDatabase(string connectionString, string schema, string? connectionPragmas = null)
{
    private readonly SemaphoreSlim initialization = new(1, 1);
    private volatile bool initialized;

    public async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            if (connectionPragmas is not null)
            {
                await ExecuteAsync(connection, connectionPragmas, cancellationToken);
            }

            if (!initialized)
            {
                await InitializeAsync(connection, cancellationToken);
            }

            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private async Task InitializeAsync(SqliteConnection connection, CancellationToken cancellationToken)
    {
        await initialization.WaitAsync(cancellationToken);
        try
        {
            if (!initialized)
            {
                await ExecuteAsync(connection, schema, cancellationToken);
                initialized = true;
            }
        }
        finally
        {
            initialization.Release();
        }
    }

    private static async Task ExecuteAsync(SqliteConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
