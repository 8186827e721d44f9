using System.Text.Json;

namespace CloudEdge.Grains;

/// <summary>What well-formed device registrations, properties, summaries and alerts are.</summary>
public static class DeviceRules
{
    public const int MaxKindLength = 64;

    public const int MaxModelLength = 128;

    public const int MaxPropertyNameLength = 64;

    public const int MaxPropertyValueLength = 4096;

    public const int MaxProperties = 64;

    public const int MaxAppliedItemIds = 1024;

    public const int MaxMetrics = 64;

    /// <summary>
    /// Processed commands a device remembers for retries. Fewer than other grains: each record holds a
    /// whole twin view, and devices see a steady stream of property updates.
    /// </summary>
    public const int MaxLoggedCommands = 16;

    public static string NormalizeLabel(string? value, string field, int maxLength)
    {
        var trimmed = value?.Trim() ?? string.Empty;
        if (trimmed.Length == 0 || trimmed.Length > maxLength || trimmed.Any(char.IsControl))
        {
            throw new InvalidInputException("invalid_" + field, field, $"'{field}' must be 1-{maxLength} characters without control characters.");
        }

        return trimmed;
    }

    /// <summary>Property names: a letter, then letters, digits, '_', '-' or '.', up to 64 characters.</summary>
    public static bool IsValidPropertyName(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxPropertyNameLength || !char.IsAsciiLetter(name[0]))
        {
            return false;
        }

        foreach (var c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('_' or '-' or '.'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Checks every change and returns values in compact JSON form (null: remove).</summary>
    public static Dictionary<string, string?> NormalizeChanges(IReadOnlyDictionary<string, string?>? properties)
    {
        if (properties is null || properties.Count == 0)
        {
            throw new InvalidInputException("no_properties", "properties", "Give at least one property.");
        }

        if (properties.Count > MaxProperties)
        {
            throw new InvalidInputException("too_many_properties", "properties", $"At most {MaxProperties} properties per device.");
        }

        var changes = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (name, value) in properties)
        {
            if (!IsValidPropertyName(name))
            {
                throw new InvalidInputException("invalid_property_name", "properties", $"Property name '{name}' must start with a letter and hold up to {MaxPropertyNameLength} letters, digits, '_', '-', '.'.");
            }

            changes[name] = value is null ? null : NormalizeValue(name, value);
        }

        return changes;
    }

    private static string NormalizeValue(string name, string json)
    {
        if (json.Length > MaxPropertyValueLength)
        {
            throw new InvalidInputException("property_too_large", $"properties.{name}", $"Property '{name}' is longer than {MaxPropertyValueLength} characters.");
        }

        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind == JsonValueKind.Null)
            {
                throw new InvalidInputException("invalid_property_value", $"properties.{name}", $"Property '{name}': use a null entry to remove a property.");
            }

            return JsonSerializer.Serialize(document.RootElement);
        }
        catch (JsonException)
        {
            throw new InvalidInputException("invalid_property_value", $"properties.{name}", $"Property '{name}' is not a JSON value.");
        }
    }
}
