using System.Collections.Concurrent;
using System.Net;
using CloudEdge.Testing.Otlp;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudEdge.Silo.Tests;

/// <summary>
/// A token sent as <c>?access_token=</c> on a live route (browsers' EventSource cannot send headers) is a
/// bearer credential: it must not reach exported spans or log records, at any level.
/// </summary>
public sealed class LiveTokenRedactionTests
{
    [Fact]
    public async Task A_query_string_token_is_in_no_exported_span_and_no_log_record()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        var logs = new CapturingLoggerProvider();
        var silo = await TestSilo.StartAsync(
            settings: new Dictionary<string, string>
            {
                ["Telemetry:OtlpEndpoint"] = receiver.Endpoint,
                // Everything, so that no category can hide a leak behind the configured levels.
                ["Logging:LogLevel:Default"] = "Trace",
                ["Logging:LogLevel:Microsoft.AspNetCore"] = "Trace",
                ["Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics"] = "Trace",
            },
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        var token = TestSilo.Token("redact-admin", "admin");
        var userToken = TestSilo.Token("redact-user");
        var expiredToken = TestSilo.Token("redact-admin", DateTimeOffset.UtcNow.AddHours(-2), DateTimeOffset.UtcNow.AddHours(-1), "admin");
        string[] tokens = [token, userToken, expiredToken];
        try
        {
            await using (var sse = await LiveSse.ConnectAsync(silo.Anonymous(), $"/api/v1/live/alerts?access_token={token}&replay=0"))
            {
                Assert.NotNull(sse.RetryMilliseconds);
            }

            // A refused one (403) and one with a bad resume point (400) go through the problem path.
            using (var refused = await LiveSse.OpenAsync(silo.Anonymous(), $"/api/v1/live/alerts?access_token={userToken}"))
            {
                Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
                Assert.DoesNotContain(userToken, await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }

            // An expired one is refused by the authentication handler (401), which logs why.
            using (var expired = await LiveSse.OpenAsync(silo.Anonymous(), $"/api/v1/live/alerts?access_token={expiredToken}"))
            {
                Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
                Assert.DoesNotContain(expiredToken, await expired.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }

            using (var bad = await LiveSse.OpenAsync(silo.Anonymous(), $"/api/v1/live/alerts?replay=x&access_token={token}"))
            {
                Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
                Assert.DoesNotContain(token, await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
        }
        finally
        {
            await silo.DisposeAsync();
        }

        Assert.Empty(receiver.Errors);
        var server = receiver.Spans.Where(s => s.Scope == "Microsoft.AspNetCore" && s.Kind == OtlpSpanKind.Server).ToList();
        Assert.True(server.Count >= 4, $"a server span per request, got {server.Count}");
        foreach (var span in receiver.Spans)
        {
            var text = span.Name + " " + string.Join(" ", span.Attributes.Select(a => $"{a.Key}={a.Value}"));
            Assert.All(tokens, t => Assert.DoesNotContain(t, text, StringComparison.Ordinal));
            Assert.DoesNotContain("access_token=ey", text, StringComparison.Ordinal);
        }

        Assert.NotEmpty(logs.Records);
        Assert.All(logs.Records, record =>
        {
            Assert.All(tokens, t => Assert.DoesNotContain(t, record, StringComparison.Ordinal));
        });
    }

    /// <summary>Every record's message, structured state and scopes, as text.</summary>
    private sealed class CapturingLoggerProvider : ILoggerProvider, ISupportExternalScope
    {
        private readonly ConcurrentQueue<string> records = new();
        private IExternalScopeProvider scopes = new LoggerExternalScopeProvider();

        public IReadOnlyCollection<string> Records => records;

        public ILogger CreateLogger(string categoryName) => new Capturing(this, categoryName);

        public void SetScopeProvider(IExternalScopeProvider scopeProvider) => scopes = scopeProvider;

        public void Dispose()
        {
        }

        private sealed class Capturing(CapturingLoggerProvider owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => owner.scopes.Push(state);

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var text = new System.Text.StringBuilder().Append(category).Append(' ').Append(formatter(state, exception)).Append(' ').Append(exception);
                AppendValues(text, state);
                owner.scopes.ForEachScope((scope, builder) => AppendValues(builder.Append(" scope:").Append(scope), scope), text);
                owner.records.Enqueue(text.ToString());
            }

            private static void AppendValues(System.Text.StringBuilder text, object? state)
            {
                if (state is IEnumerable<KeyValuePair<string, object?>> values)
                {
                    foreach (var (key, value) in values)
                    {
                        text.Append(' ').Append(key).Append('=').Append(value);
                    }
                }
            }
        }
    }
}
