using System.Net;
using Microsoft.Extensions.Options;

namespace CloudEdge.Silo.Tests;

/// <summary>
/// Expiry is checked with a small, bounded clock skew (Auth:ClockSkew, default 5 s, at most 30 s), not
/// ASP.NET Core's five minutes. The margins are several seconds wide so a slow machine cannot flip them.
/// </summary>
public sealed class ClockSkewTests
{
    private static string ExpiredSecondsAgo(int seconds)
    {
        var expires = DateTimeOffset.UtcNow.AddSeconds(-seconds);
        return TestSilo.Token("alice", expires.AddMinutes(-5), expires);
    }

    [Fact]
    public async Task By_default_a_token_that_expired_ten_seconds_ago_is_refused()
    {
        await using var silo = await TestSilo.StartAsync();
        var (response, _) = await silo.WithToken(ExpiredSecondsAgo(10)).Get("/api/v1/ping");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("expired", Assert.Single(response.Headers.WwwAuthenticate).Parameter, StringComparison.Ordinal);
        (await silo.WithToken(TestSilo.Token("alice")).Get("/api/v1/ping")).AssertStatus(HttpStatusCode.OK);
    }

    [Fact]
    public async Task The_skew_is_configurable_up_to_thirty_seconds()
    {
        await using (var lenient = await TestSilo.StartAsync(settings: new Dictionary<string, string> { ["Auth:ClockSkew"] = "00:00:30" }))
        {
            (await lenient.WithToken(ExpiredSecondsAgo(10)).Get("/api/v1/ping")).AssertStatus(HttpStatusCode.OK);
            Assert.Equal(HttpStatusCode.Unauthorized, (await lenient.WithToken(ExpiredSecondsAgo(60)).Get("/api/v1/ping")).Response.StatusCode);
        }

        await using var strict = await TestSilo.StartAsync(settings: new Dictionary<string, string> { ["Auth:ClockSkew"] = "00:00:00" });
        Assert.Equal(HttpStatusCode.Unauthorized, (await strict.WithToken(ExpiredSecondsAgo(3)).Get("/api/v1/ping")).Response.StatusCode);
    }

    [Theory]
    [InlineData("00:01:00")]
    [InlineData("-00:00:01")]
    public async Task A_skew_beyond_thirty_seconds_or_negative_stops_the_silo_at_start(string skew)
    {
        var directory = TestSilo.NewDataDirectory();
        try
        {
            var settings = new Dictionary<string, string> { ["Auth:ClockSkew"] = skew, ["Silo:Postgres"] = await TestSilo.DatabaseOf(directory) };
            await using var app = SiloApplication.Build(TestSilo.Arguments(directory, settings));
            var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
            Assert.Contains("Auth:ClockSkew", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            TestSilo.DeleteDirectory(directory);
        }
    }
}
