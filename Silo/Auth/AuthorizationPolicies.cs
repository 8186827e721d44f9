namespace CloudEdge.Silo.Auth;

/// <summary>The named authorization policies of the silo's endpoints.</summary>
internal static class AuthorizationPolicies
{
    /// <summary>An authenticated caller with the admin role (the Orleans dashboard, say).</summary>
    public const string Admin = "admin";

    public static void AddSiloPolicies(this WebApplicationBuilder builder) =>
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(Admin, policy => policy.RequireAuthenticatedUser().RequireRole(Roles.Admin));
}
