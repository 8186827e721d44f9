using System.CommandLine;

namespace CloudEdge.Silo.Auth;

/// <summary>
/// The <c>token</c> subcommand of the silo executable: mints a token for local use, signed with the
/// same key and naming the same issuer and audience as the silo's configuration (or the options).
/// </summary>
internal static class TokenCommand
{
    public static bool Matches(string[] args) => args.Length > 0 && string.Equals(args[0], "token", StringComparison.Ordinal);

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var configuration = new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddJsonFile($"appsettings.{Environment.GetEnvironmentVariable("ASPNETCORE_ENVIRONMENT") ?? "Production"}.json", optional: true)
            .AddEnvironmentVariables()
            .Build();
        var defaults = configuration.GetSection(AuthOptions.Section).Get<AuthOptions>() ?? new AuthOptions();

        var sub = new Option<string>("--sub") { Description = "The subject: the user id the token speaks for.", Required = true };
        var role = new Option<string[]>("--role") { Description = "A role (admin, user, gateway); repeat for several.", DefaultValueFactory = _ => [Roles.User] };
        // The key never comes on the command line, which every user of the machine can read (ps, /proc).
        var keyFile = new Option<FileInfo?>("--key-file") { Description = "A file holding the signing key (default: Auth:SigningKey from configuration or Auth__SigningKey)." };
        var issuer = new Option<string>("--issuer") { Description = "The issuer (default: Auth:Issuer).", DefaultValueFactory = _ => defaults.Issuer };
        var audience = new Option<string>("--audience") { Description = "The audience (default: Auth:Audience).", DefaultValueFactory = _ => defaults.Audience };
        var lifetime = new Option<TimeSpan>("--lifetime") { Description = "How long the token is valid, as hh:mm:ss (default: Auth:TokenLifetime).", DefaultValueFactory = _ => defaults.TokenLifetime };

        var token = new Command("token", "Mints a JWT for this silo and prints it.") { sub, role, keyFile, issuer, audience, lifetime };
        token.SetAction(parsed =>
        {
            var signingKey = defaults.SigningKey;
            if (parsed.GetValue(keyFile) is { } file)
            {
                if (!file.Exists)
                {
                    error.WriteLine($"The key file '{file.FullName}' does not exist.");
                    return 2;
                }

                signingKey = File.ReadAllText(file.FullName).Trim();
            }

            var keyBytes = AuthOptions.DecodeKey(signingKey, out var problem);
            if (keyBytes is null)
            {
                error.WriteLine(problem + " Pass --key-file or set Auth__SigningKey.");
                return 2;
            }

            var valid = parsed.GetValue(lifetime);
            if (valid <= TimeSpan.Zero)
            {
                error.WriteLine("--lifetime must be positive.");
                return 2;
            }

            var now = TimeProvider.System.GetUtcNow();
            output.WriteLine(TokenIssuer.Mint(
                keyBytes,
                parsed.GetValue(issuer)!,
                parsed.GetValue(audience)!,
                parsed.GetValue(sub)!,
                parsed.GetValue(role) ?? [],
                now,
                now + valid));
            return 0;
        });

        var root = new RootCommand("CloudEdge silo. Without a subcommand it runs the silo; 'token' mints a JWT.") { token };
        return root.Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
    }
}
