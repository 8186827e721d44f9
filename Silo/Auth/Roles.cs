namespace CloudEdge.Silo.Auth;

/// <summary>The roles a token can carry in its "role" claims.</summary>
public static class Roles
{
    /// <summary>Sees and changes everything, and moves orders through shipping and delivery.</summary>
    public const string Admin = "admin";

    /// <summary>The default: sees and changes only their own user, orders and devices.</summary>
    public const string User = "user";

    /// <summary>An edge gateway: reports device properties and connection status.</summary>
    public const string Gateway = "gateway";
}
