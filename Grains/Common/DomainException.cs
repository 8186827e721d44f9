namespace CloudEdge.Grains;

/// <summary>
/// A command broke a domain rule. Each kind maps to one answer for callers (HTTP maps them to
/// 400, 404, 409 and 422); <see cref="Code"/> is a stable, machine-readable reason. Serializable, so
/// the caller of a grain on another silo gets the same type and code.
/// </summary>
[GenerateSerializer]
[Alias("cloudedge.DomainException")]
public abstract class DomainException(string code, string message) : Exception(message)
{
    [Id(0)]
    public string Code { get; private set; } = code;
}

/// <summary>A field of a command is missing, malformed or out of range.</summary>
[GenerateSerializer]
[Alias("cloudedge.InvalidInputException")]
public sealed class InvalidInputException(string code, string field, string message) : DomainException(code, message)
{
    [Id(0)]
    public string Field { get; private set; } = field;
}

/// <summary>The addressed entity does not exist.</summary>
[GenerateSerializer]
[Alias("cloudedge.EntityNotFoundException")]
public sealed class EntityNotFoundException(string code, string message) : DomainException(code, message);

/// <summary>The command conflicts with the entity's current state: an illegal transition, a stale version, a duplicate.</summary>
[GenerateSerializer]
[Alias("cloudedge.DomainConflictException")]
public sealed class DomainConflictException(string code, string message) : DomainException(code, message);

/// <summary>The command is well-formed but breaks a rule across entities, such as an order for a user who does not exist.</summary>
[GenerateSerializer]
[Alias("cloudedge.RuleViolationException")]
public sealed class RuleViolationException(string code, string message) : DomainException(code, message);
