using System.Globalization;

namespace CloudEdge.Runtime;

/// <summary>
/// The identity of a grain: its grain type (for example <c>user</c>) and its primary key, kept as a
/// string whatever the key kind, so that an id has one canonical text form (<c>type/key</c>) that can
/// be stored, logged and sent between silos.
/// </summary>
public readonly struct GrainId : IEquatable<GrainId>, IComparable<GrainId>
{
    public GrainId(string type, string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(type);
        ArgumentNullException.ThrowIfNull(key);
        if (type.Contains('/'))
        {
            throw new ArgumentException("A grain type must not contain '/'.", nameof(type));
        }

        Type = type;
        Key = key;
    }

    /// <summary>The grain type name, as given by <see cref="GrainTypeAttribute"/> or derived from the class name.</summary>
    public string Type { get; }

    /// <summary>The primary key in its canonical text form.</summary>
    public string Key { get; }

    public bool IsDefault => Type is null;

    public static GrainId Create(string type, string key) => new(type, key);

    public static GrainId Create(string type, Guid key) => new(type, key.ToString("N"));

    public static GrainId Create(string type, long key) => new(type, key.ToString(CultureInfo.InvariantCulture));

    /// <summary>Parses the <c>type/key</c> form produced by <see cref="ToString"/>.</summary>
    public static GrainId Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0)
        {
            throw new FormatException($"'{value}' is not a grain id of the form 'type/key'.");
        }

        return new GrainId(value[..slash], value[(slash + 1)..]);
    }

    public bool Equals(GrainId other) => string.Equals(Type, other.Type, StringComparison.Ordinal) && string.Equals(Key, other.Key, StringComparison.Ordinal);

    public override bool Equals(object? obj) => obj is GrainId other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Type, Key);

    public int CompareTo(GrainId other)
    {
        var byType = string.CompareOrdinal(Type, other.Type);
        return byType != 0 ? byType : string.CompareOrdinal(Key, other.Key);
    }

    public override string ToString() => IsDefault ? "(none)" : $"{Type}/{Key}";

    public static bool operator ==(GrainId left, GrainId right) => left.Equals(right);

    public static bool operator !=(GrainId left, GrainId right) => !left.Equals(right);
}
