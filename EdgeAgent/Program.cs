using CloudEdge.EdgeAgent;

await EdgeAgentHost.Build(args).RunAsync();
