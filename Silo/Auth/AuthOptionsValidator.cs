using Microsoft.Extensions.Options;

namespace CloudEdge.Silo.Auth;

/// <summary>Refuses to start a silo whose token settings would make authentication weak or broken.</summary>
internal sealed class AuthOptionsValidator : IValidateOptions<AuthOptions>
{
    public ValidateOptionsResult Validate(string? name, AuthOptions options)
    {
        var failures = new List<string>();
        if (AuthOptions.DecodeKey(options.SigningKey, out var problem) is null)
        {
            failures.Add($"{problem} The silo does not start without a signing key: set Auth:SigningKey (or the Auth__SigningKey environment variable) to at least {AuthOptions.MinKeyBytes} bytes.");
        }

        if (string.IsNullOrWhiteSpace(options.Issuer) || string.IsNullOrWhiteSpace(options.Audience))
        {
            failures.Add("Auth:Issuer and Auth:Audience must not be empty: every token is checked against them.");
        }

        if (options.ClockSkew < TimeSpan.Zero || options.ClockSkew > AuthOptions.MaxClockSkew)
        {
            failures.Add($"Auth:ClockSkew is {options.ClockSkew}; it must be between 00:00:00 and {AuthOptions.MaxClockSkew}.");
        }

        if (options.TokenLifetime <= TimeSpan.Zero)
        {
            failures.Add($"Auth:TokenLifetime is {options.TokenLifetime}; it must be positive.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
