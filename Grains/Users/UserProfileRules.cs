using System.Net.Mail;

namespace CloudEdge.Grains;

/// <summary>What a well-formed user profile is.</summary>
public static class UserProfileRules
{
    public const int MaxEmailLength = 254;

    public const int MaxDisplayNameLength = 100;

    public static string NormalizeEmail(string? email)
    {
        var trimmed = email?.Trim() ?? string.Empty;
        if (trimmed.Length is 0 or > MaxEmailLength
            || !MailAddress.TryCreate(trimmed, out var address)
            || !string.Equals(address.Address, trimmed, StringComparison.Ordinal)
            || !string.IsNullOrEmpty(address.DisplayName)
            || !address.Host.Contains('.', StringComparison.Ordinal)
            || address.Host.StartsWith('.') || address.Host.EndsWith('.'))
        {
            throw new InvalidInputException("invalid_email", "email", $"'email' must be a well-formed address of at most {MaxEmailLength} characters, like name@example.com.");
        }

        return trimmed;
    }

    public static string NormalizeDisplayName(string? displayName)
    {
        var trimmed = displayName?.Trim() ?? string.Empty;
        if (trimmed.Length is 0 or > MaxDisplayNameLength || trimmed.Any(char.IsControl))
        {
            throw new InvalidInputException("invalid_display_name", "displayName", $"'displayName' must be 1-{MaxDisplayNameLength} characters without control characters.");
        }

        return trimmed;
    }
}
