namespace CloudEdge.Runtime;

/// <summary>
/// The identity of a stream: a namespace (what kind of events, e.g. <c>telemetry</c>) and a key (whose
/// events, e.g. a device id). Implicit subscribers are chosen by namespace and activated by key.
/// </summary>
public readonly record struct StreamId
{
    public StreamId(string @namespace, string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(@namespace);
        ArgumentNullException.ThrowIfNull(key);
        if (@namespace.Contains('/'))
        {
            throw new ArgumentException("A stream namespace must not contain '/'.", nameof(@namespace));
        }

        Namespace = @namespace;
        Key = key;
    }

    public string Namespace { get; }

    public string Key { get; }

    public static StreamId Create(string @namespace, string key) => new(@namespace, key);

    public static StreamId Create(string @namespace, Guid key) => new(@namespace, key.ToString("N"));

    /// <summary>Parses the <c>namespace/key</c> form produced by <see cref="ToString"/>.</summary>
    public static StreamId Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0)
        {
            throw new FormatException($"'{value}' is not a stream id of the form 'namespace/key'.");
        }

        return new StreamId(value[..slash], value[(slash + 1)..]);
    }

    public override string ToString() => $"{Namespace}/{Key}";
}
