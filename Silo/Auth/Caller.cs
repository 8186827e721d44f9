using System.Security.Claims;
using Microsoft.IdentityModel.JsonWebTokens;

namespace CloudEdge.Silo.Auth;

/// <summary>Who is calling, read from the validated token: the subject (a user id) and roles.</summary>
internal readonly record struct Caller(string Subject, bool IsAdmin, bool IsGateway)
{
    public static Caller From(ClaimsPrincipal principal)
    {
        var subject = principal.FindFirstValue(JwtRegisteredClaimNames.Sub) ?? string.Empty;
        return new Caller(subject, principal.IsInRole(Roles.Admin), principal.IsInRole(Roles.Gateway));
    }

    /// <summary>Admins reach every user's data; everyone else only their own.</summary>
    public bool CanAccessUser(string userId) => IsAdmin || string.Equals(Subject, userId, StringComparison.Ordinal);

    public void EnsureCanAccessUser(string userId)
    {
        if (!CanAccessUser(userId))
        {
            throw new AccessDeniedException($"'{Subject}' may not access data of user '{userId}'.");
        }
    }

    /// <summary>Admins, and a gateway for its own routes (the token's subject is the gateway id).</summary>
    public void EnsureGatewayOrAdmin(string gatewayId)
    {
        if (!IsAdmin && !(IsGateway && string.Equals(Subject, gatewayId, StringComparison.Ordinal)))
        {
            throw new AccessDeniedException(IsGateway
                ? $"Gateway '{Subject}' may only use the routes of its own gateway id, not '{gatewayId}'."
                : $"Only gateway '{gatewayId}' (the '{Roles.Gateway}' role with that subject) or the '{Roles.Admin}' role may do this.");
        }
    }

    public void EnsureAdmin(string action)
    {
        if (!IsAdmin)
        {
            throw new AccessDeniedException($"Only the '{Roles.Admin}' role may {action}.");
        }
    }
}

/// <summary>The caller is authenticated but not allowed to do this: answered with 403.</summary>
internal sealed class AccessDeniedException(string message) : Exception(message);
