using Microsoft.OpenApi;

namespace CloudEdge.Silo.Hosting;

/// <summary>The OpenAPI document at /openapi/v1.json, declaring the bearer scheme so the docs UI can send a token.</summary>
internal static class OpenApiSetup
{
    public const string BearerScheme = "Bearer";

    public static void AddSiloOpenApi(this WebApplicationBuilder builder) =>
        builder.Services.AddOpenApi(options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "CloudEdge API";
                document.Info.Description = "Users, orders and device twins. Every /api/v1 route needs a JWT bearer token; commands need an Idempotency-Key.";
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[BearerScheme] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    BearerFormat = "JWT",
                    Description = "A token minted with `dotnet run --project Silo -- token --sub <user> --role <role>`.",
                };
                document.Security ??= [];
                document.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(BearerScheme, document)] = [] });
                return Task.CompletedTask;
            });
        });
}
