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

    public const int MaxModelVersionLength = 64;

    public const int MaxLinks = 32;

    /// <summary>Alert kinds counted separately; further kinds are still counted in the total.</summary>
    public const int MaxAlertKinds = 32;

    /// <summary>
    /// Processed commands a device remembers for retries. Fewer than other grains: each record holds a
    /// whole twin view, and devices see a steady stream of property updates.
    /// </summary>
    public const int MaxLoggedCommands = 16;

    /// <summary>Null when the summary is well-formed, else a reason code and a message.</summary>
    public static (string Code, string Message)? CheckSummary(DeviceSummary summary)
    {
        if (CheckItem(summary.ItemId, summary.GatewayId, summary.Seq, summary.Kind, summary.ModelVersion, summary.TraceParent) is { } item)
        {
            return item;
        }

        if (summary.WindowEnd < summary.WindowStart)
        {
            return ("invalid_summary", "A summary's window must not end before it starts.");
        }

        if (summary.Count < 0 || summary.AnomalyCount < 0 || summary.AnomalyCount > summary.Count)
        {
            return ("invalid_summary", "A summary's count must not be negative and its anomaly count must lie between 0 and the count.");
        }

        double[] values = [summary.Min, summary.Max, summary.Mean, summary.StdDev, summary.MaxScore];
        if (values.Any(v => !double.IsFinite(v)) || summary.StdDev < 0 || (summary.Count > 0 && summary.Min > summary.Max))
        {
            return ("invalid_summary", "A summary's statistics must be finite, with min <= max and stddev >= 0.");
        }

        if (summary.Links is { } links && (links.Count > MaxLinks || links.Any(l => !TraceContext.IsValid(l))))
        {
            return ("invalid_traceparent", $"A summary has at most {MaxLinks} links, each a W3C traceparent.");
        }

        return null;
    }

    /// <summary>Null when the alert is well-formed, else a reason code and a message.</summary>
    public static (string Code, string Message)? CheckAlert(DeviceAlert alert)
    {
        if (CheckItem(alert.ItemId, alert.GatewayId, alert.Seq, alert.Kind, alert.ModelVersion, alert.TraceParent) is { } item)
        {
            return item;
        }

        if (!double.IsFinite(alert.Value) || !double.IsFinite(alert.Score) || !double.IsFinite(alert.Threshold) || alert.ReadingSeq < 0)
        {
            return ("invalid_alert", "An alert's value, score and threshold must be finite, and its reading seq must not be negative.");
        }

        return null;
    }

    private static (string Code, string Message)? CheckItem(string? itemId, string? gatewayId, long seq, string? kind, string? modelVersion, string? traceParent)
    {
        if (!Identifiers.IsValidRequestId(itemId))
        {
            return ("invalid_item_id", $"An item id is 1-{Identifiers.MaxRequestIdLength} printable ASCII characters.");
        }

        if (!Identifiers.IsValidId(gatewayId))
        {
            return ("invalid_id", "The gateway id is not a valid id.");
        }

        if (seq < 1)
        {
            return ("invalid_seq", "An item's seq starts at 1.");
        }

        if (string.IsNullOrWhiteSpace(kind) || kind.Length > MaxKindLength || kind.Any(char.IsControl))
        {
            return ("invalid_kind", $"An item's kind is 1-{MaxKindLength} characters without control characters.");
        }

        if (modelVersion is not null && (modelVersion.Length > MaxModelVersionLength || modelVersion.Any(char.IsControl)))
        {
            return ("invalid_model_version", $"A model version is at most {MaxModelVersionLength} characters without control characters.");
        }

        if (traceParent is not null && !TraceContext.IsValid(traceParent))
        {
            return ("invalid_traceparent", "An item's traceparent must be a W3C traceparent.");
        }

        return null;
    }

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
