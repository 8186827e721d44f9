using System.Net;
using MQTTnet.Server;

// MQTTnet's server as a new user would run it: default options plus persistent sessions, on 127.0.0.1 only.
// The MQTT bench starts it as its own process: `CloudEdge.Bench.MqttnetServer --port <n>`.
var portIndex = Array.IndexOf(args, "--port");
if (portIndex < 0 || portIndex + 1 >= args.Length || !int.TryParse(args[portIndex + 1], out var port) || port is <= 0 or > 65535)
{
    Console.Error.WriteLine("usage: CloudEdge.Bench.MqttnetServer --port <1-65535>");
    return 2;
}

var factory = new MqttServerFactory();
var options = factory.CreateServerOptionsBuilder()
    .WithDefaultEndpoint()
    .WithDefaultEndpointBoundIPAddress(IPAddress.Loopback)
    .WithDefaultEndpointBoundIPV6Address(IPAddress.IPv6Loopback)
    .WithDefaultEndpointPort(port)
    .WithPersistentSessions()
    .Build();
using var server = factory.CreateMqttServer(options);
await server.StartAsync();
Console.WriteLine($"MQTTnet server listening on 127.0.0.1:{port}");

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.Cancel();
try
{
    await Task.Delay(Timeout.Infinite, stop.Token);
}
catch (OperationCanceledException)
{
}
await server.StopAsync();
return 0;
