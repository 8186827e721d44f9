using System.Data.Common;
using System.Net.Sockets;
using Orleans.Serialization;

namespace CloudEdge.Silo.Hosting;

/// <summary>Which failures mean "the database does not answer" (a 503 to retry), as opposed to a bug (a 500).</summary>
internal static class StorageFailures
{
    /// <summary>True when this exception or one it wraps is a database or connection failure.</summary>
    public static bool IsUnavailable(Exception exception)
    {
        for (var current = exception; current is not null; current = current.InnerException)
        {
            if (IsDatabaseFailure(current) || current is SocketException)
            {
                return true;
            }

            if (current is AggregateException aggregate && aggregate.InnerExceptions.Any(IsUnavailable))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>This exception itself comes from the database driver.</summary>
    public static bool IsDatabaseFailure(Exception exception) =>
        exception is DbException
        || exception.GetType().FullName?.StartsWith("Npgsql.", StringComparison.Ordinal) == true
        // A driver exception that a grain call could not carry as its own type keeps the type's name.
        || (exception is UnavailableExceptionFallbackException fallback && fallback.ExceptionType?.Contains("Npgsql", StringComparison.Ordinal) == true);
}
