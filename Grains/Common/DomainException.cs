namespace CloudEdge.Grains;

/// <summary>
/// A command broke a domain rule. Each kind maps to one answer for callers (HTTP maps them to
/// 400, 404, 409 and 422); <see cref="Code"/> is a stable, machine-readable reason.
/// </summary>
public abstract class DomainException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}

/// <summary>A field of a command is missing, malformed or out of range.</summary>
public sealed class InvalidInputException(string code, string field, string message) : DomainException(code, message)
{
    public string Field { get; } = field;
}

/// <summary>The addressed entity does not exist.</summary>
public sealed class EntityNotFoundException(string code, string message) : DomainException(code, message);

/// <summary>The command conflicts with the entity's current state: an illegal transition, a stale version, a duplicate.</summary>
public sealed class DomainConflictException(string code, string message) : DomainException(code, message);

/// <summary>The command is well-formed but breaks a rule across entities, such as an order for a user who does not exist.</summary>
public sealed class RuleViolationException(string code, string message) : DomainException(code, message);
