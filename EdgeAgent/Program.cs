using CloudEdge.EdgeAgent;

if (args is ["check-model", .. var rest]) return CheckModelCommand.Run(rest, Console.Out, Console.Error);
await EdgeAgentHost.Build(args).RunAsync();
return 0;
