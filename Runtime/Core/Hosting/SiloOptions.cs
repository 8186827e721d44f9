namespace CloudEdge.Runtime.Hosting;

/// <summary>Silo settings; bound from the configuration section "Silo".</summary>
public sealed class SiloOptions
{
    public const string SectionName = "Silo";

    /// <summary>The silo's name in logs, metrics and addresses.</summary>
    public string SiloName { get; set; } = Environment.MachineName;

    /// <summary>How long a caller waits for a grain call before <see cref="GrainCallTimeoutException"/>.</summary>
    public TimeSpan ResponseTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>An activation idle for this long is deactivated.</summary>
    public TimeSpan CollectionAge { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>How often idle activations are looked for.</summary>
    public TimeSpan CollectionQuantum { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The longest an activation's OnDeactivateAsync may run.</summary>
    public TimeSpan DeactivationTimeout { get; set; } = TimeSpan.FromSeconds(30);

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(SiloName))
        {
            throw new ArgumentException("SiloOptions.SiloName must not be empty.");
        }

        Positive(ResponseTimeout, nameof(ResponseTimeout));
        Positive(CollectionAge, nameof(CollectionAge));
        Positive(CollectionQuantum, nameof(CollectionQuantum));
        Positive(DeactivationTimeout, nameof(DeactivationTimeout));
    }

    private static void Positive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(name, value, $"SiloOptions.{name} must be positive.");
        }
    }
}
