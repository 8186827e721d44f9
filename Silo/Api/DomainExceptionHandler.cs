using System.Diagnostics;
using CloudEdge.Grains;
using CloudEdge.Silo.Auth;
using CloudEdge.Silo.Hosting;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using Orleans.Storage;

namespace CloudEdge.Silo.Api;

/// <summary>
/// Turns domain and request exceptions into ProblemDetails answers: bad input 400, unknown ids 404,
/// conflicts 409, rule violations 422, a busy or stopping silo or an unreachable database 503. Anything else stays a 500.
/// Every problem carries a stable "code".
/// </summary>
internal sealed partial class DomainExceptionHandler(IProblemDetailsService problems, SiloMetrics metrics, ILogger<DomainExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (Map(exception) is not { } problem)
        {
            return false;
        }

        var code = (string?)problem.Extensions["code"] ?? "unknown";
        metrics.RecordProblem(problem.Status ?? 500, code);
        Activity.Current?.SetTag("cloudedge.problem.code", code);
        LogProblem(logger, httpContext.Request.Method, httpContext.Request.Path, problem.Status ?? 500, code, problem.Detail);
        httpContext.Response.StatusCode = problem.Status ?? StatusCodes.Status500InternalServerError;
        if (problem.Status == StatusCodes.Status503ServiceUnavailable)
        {
            // Busy or stopping: a retry (with the same Idempotency-Key, or the same uplink batch) is safe.
            httpContext.Response.Headers.RetryAfter = "1";
        }

        if (await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            ProblemDetails = problem,
            Exception = exception,
        }))
        {
            return true;
        }

        // The writer declines clients that do not accept JSON (EventSource sends Accept: text/event-stream);
        // they still get the problem, as application/problem+json.
        await TypedResults.Problem(problem).ExecuteAsync(httpContext);
        return true;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Method} {Path} answered {Status} {Code}: {Detail}")]
    private static partial void LogProblem(ILogger logger, string method, string path, int status, string code, string? detail);

    internal static ProblemDetails? Map(Exception exception)
    {
        // The runtime may wrap what a grain threw: the first known exception down the inner chain is the answer.
        for (var current = exception; current is not null; current = current.InnerException)
        {
            if (Describe(current) is { } problem)
            {
                return problem;
            }

            if (current is AggregateException { InnerExceptions.Count: 1 } aggregate)
            {
                return Map(aggregate.InnerExceptions[0]);
            }
        }

        return null;
    }

    private static ProblemDetails? Describe(Exception exception) => exception switch
    {
        InvalidInputException e => Problem(StatusCodes.Status400BadRequest, "Invalid input", e.Message, e.Code,
            new Dictionary<string, string[]> { [e.Field] = [e.Message] }),
        EntityNotFoundException e => Problem(StatusCodes.Status404NotFound, "Not found", e.Message, e.Code),
        DomainConflictException e => Problem(StatusCodes.Status409Conflict, "Conflict", e.Message, e.Code),
        RuleViolationException e => Problem(StatusCodes.Status422UnprocessableEntity, "Rule violated", e.Message, e.Code),
        // Orleans' storage refuses a write with a stale ETag (two activations of one grain wrote the same record).
        InconsistentStateException => Problem(StatusCodes.Status409Conflict, "Conflict",
            "The entity was changed by another writer at the same time; read it again and retry.", "etag_conflict"),
        RequestRejectedException e => Problem(e.StatusCode, e.StatusCode switch
            {
                StatusCodes.Status413PayloadTooLarge => "Payload too large",
                StatusCodes.Status415UnsupportedMediaType => "Unsupported media type",
                StatusCodes.Status429TooManyRequests => "Too many requests",
                _ => "Malformed request",
            }, e.Message, e.Code),
        AccessDeniedException e => Problem(StatusCodes.Status403Forbidden, "Forbidden", e.Message, "forbidden"),
        BadHttpRequestException e => Problem(e.StatusCode, e.StatusCode == StatusCodes.Status400BadRequest ? "Malformed request" : "Bad request",
            e.InnerException is System.Text.Json.JsonException json ? $"{e.Message} {json.Message}" : e.Message,
            e.StatusCode == StatusCodes.Status400BadRequest ? "malformed_request" : "bad_request"),
        SiloUnavailableException e => Problem(StatusCodes.Status503ServiceUnavailable, "Unavailable", e.Message, "silo_unavailable"),
        _ when StorageFailures.IsDatabaseFailure(exception) => Problem(StatusCodes.Status503ServiceUnavailable, "Unavailable",
            "The platform's database does not answer; nothing of this request was lost: retry it with the same Idempotency-Key.", "storage_unavailable"),
        TimeoutException => Problem(StatusCodes.Status503ServiceUnavailable, "Unavailable", "The request timed out inside the silo; retry it with the same Idempotency-Key.", "timeout"),
        _ => null,
    };

    private static ProblemDetails Problem(int status, string title, string detail, string code, IDictionary<string, string[]>? errors = null)
    {
        var problem = errors is null
            ? new ProblemDetails()
            : new ValidationProblemDetails(errors);
        problem.Status = status;
        problem.Title = title;
        problem.Detail = detail;
        problem.Extensions["code"] = code;
        return problem;
    }
}
