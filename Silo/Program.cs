using CloudEdge.Silo;
using CloudEdge.Silo.Auth;

if (TokenCommand.Matches(args))
{
    return TokenCommand.Run(args, Console.Out, Console.Error);
}

var app = SiloApplication.Build(args);
await app.RunAsync();
return 0;

public partial class Program;
