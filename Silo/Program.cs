using CloudEdge.Silo;
using CloudEdge.Silo.Auth;
using CloudEdge.Silo.Hosting;

if (TokenCommand.Matches(args))
{
    return TokenCommand.Run(args, Console.Out, Console.Error);
}

if (MigrateCommand.Matches(args))
{
    return await MigrateCommand.RunAsync(args, Console.Error);
}

var app = SiloApplication.Build(args);
await app.RunAsync();
return 0;

public partial class Program;
