using System.CommandLine;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using CloudEdge.Mqtt.Broker;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;

// The broker on its own: `CloudEdge.Mqtt.BrokerHost --port 1883 --tls-port 8883 --cert server.pfx --users users.txt --acl acl.txt`.
var bind = new Option<string>("--bind") { Description = "Address to listen on.", DefaultValueFactory = _ => "127.0.0.1" };
var port = new Option<int>("--port", "-p") { Description = "Plain TCP port (0: none).", DefaultValueFactory = _ => 1883 };
var tlsPort = new Option<int>("--tls-port") { Description = "TLS port (needs --cert; 0: none).", DefaultValueFactory = _ => 0 };
var cert = new Option<FileInfo?>("--cert") { Description = "Server certificate: PEM (with --key) or PKCS#12." };
var key = new Option<FileInfo?>("--key") { Description = "PEM private key of --cert." };
var clientCa = new Option<FileInfo?>("--client-ca") { Description = "PEM CA that signs client certificates (enables certificate authentication)." };
var requireClientCert = new Option<bool>("--require-client-cert") { Description = "Refuse TLS clients without a certificate signed by --client-ca." };
var users = new Option<FileInfo?>("--users") { Description = "Users file: one 'username:pbkdf2-sha256$...' per line (see hash-password)." };
var acl = new Option<FileInfo?>("--acl") { Description = "ACL file: '<publish|subscribe|all> <username|*> <topic pattern>' per line; {clientid} and {username} are substituted." };
var anonymous = new Option<bool>("--allow-anonymous") { Description = "Accept clients without credentials (off by default)." };
var maxPacket = new Option<int>("--max-packet-size") { Description = "Largest packet accepted, in bytes.", DefaultValueFactory = _ => 1024 * 1024 };
var maxQueue = new Option<int>("--max-queued") { Description = "Messages queued per session before the newest is dropped.", DefaultValueFactory = _ => 10_000 };
var dataDir = new Option<DirectoryInfo?>("--data-dir") { Description = "Keep persistent sessions and retained messages in <dir>/broker.db (SQLite) across restarts." };
var verbose = new Option<bool>("--verbose", "-v") { Description = "Debug logging." };

var root = new RootCommand("CloudEdge MQTT 3.1.1/5.0 broker.")
{
    bind, port, tlsPort, cert, key, clientCa, requireClientCert, users, acl, anonymous, maxPacket, maxQueue, dataDir, verbose,
};
root.SetAction(async (parse, cancellationToken) =>
{
    var address = IPAddress.Parse(parse.GetValue(bind)!);
    var serverOptions = new MqttServerOptions
    {
        TcpEndPoint = parse.GetValue(port) is > 0 and var p ? new IPEndPoint(address, p) : null,
    };
    if (parse.GetValue(tlsPort) is > 0 and var tp)
    {
        var certFile = parse.GetValue(cert) ?? throw new ArgumentException("--tls-port needs --cert.");
        var keyFile = parse.GetValue(key);
        serverOptions.TlsEndPoint = new IPEndPoint(address, tp);
        serverOptions.ServerCertificate = keyFile is null
            ? X509CertificateLoader.LoadPkcs12FromFile(certFile.FullName, null)
            : X509CertificateLoader.LoadPkcs12(X509Certificate2.CreateFromPemFile(certFile.FullName, keyFile.FullName).Export(X509ContentType.Pkcs12), null);
        if (parse.GetValue(clientCa) is { } ca)
        {
            serverOptions.ClientCertificateAuthorities = [];
            serverOptions.ClientCertificateAuthorities.ImportFromPemFile(ca.FullName);
            serverOptions.ClientCertificateMode = parse.GetValue(requireClientCert) ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.AllowCertificate;
        }
    }
    var storeDirectory = parse.GetValue(dataDir);
    await using var server = await MqttServer.StartAsync(serverOptions, o =>
    {
        o.AllowAnonymous = parse.GetValue(anonymous);
        o.MaximumPacketSize = parse.GetValue(maxPacket);
        o.MaximumQueuedMessagesPerSession = parse.GetValue(maxQueue);
        if (parse.GetValue(users) is { } u) MqttBrokerFiles.LoadUsers(u.FullName, o);
        if (parse.GetValue(acl) is { } a) MqttBrokerFiles.LoadAcl(a.FullName, o);
    }, configureServices: services =>
    {
        if (storeDirectory is not null) services.AddMqttBrokerSqliteStore(Path.Combine(storeDirectory.FullName, "broker.db"));
    }, configureLogging: logging =>
    {
        logging.AddSimpleConsole(c => c.SingleLine = true);
        logging.SetMinimumLevel(parse.GetValue(verbose) ? LogLevel.Debug : LogLevel.Information);
        logging.AddFilter("Microsoft", LogLevel.Warning);
    }, cancellationToken: cancellationToken);
    Console.WriteLine($"CloudEdge MQTT broker listening: tcp {server.TcpPort?.ToString() ?? "off"}, tls {server.TlsPort?.ToString() ?? "off"}");
    try
    {
        await Task.Delay(Timeout.Infinite, cancellationToken);
    }
    catch (OperationCanceledException)
    {
    }
    return 0;
});

var passwordArgument = new Argument<string>("password") { Description = "The password to hash (prefer stdin: pass '-')." };
var hash = new Command("hash-password", "Prints a PBKDF2 hash for a users file line.") { passwordArgument };
hash.SetAction(parse =>
{
    var password = parse.GetValue(passwordArgument)!;
    if (password == "-") password = Console.In.ReadLine() ?? "";
    Console.WriteLine(MqttPasswordHasher.Hash(password));
    return 0;
});
root.Subcommands.Add(hash);

return await root.Parse(args).InvokeAsync();
