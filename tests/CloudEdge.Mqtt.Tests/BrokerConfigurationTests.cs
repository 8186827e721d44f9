using System.Text;
using CloudEdge.Mqtt.Broker;

namespace CloudEdge.Mqtt.Tests;

public sealed class BrokerConfigurationTests
{
    [Fact]
    public void Password_hashes_verify_only_the_original_password_and_are_salted()
    {
        var hash = MqttPasswordHasher.Hash("correct horse", iterations: 1000);
        Assert.StartsWith("pbkdf2-sha256$1000$", hash);
        Assert.True(MqttPasswordHasher.Verify(Encoding.UTF8.GetBytes("correct horse"), hash));
        Assert.False(MqttPasswordHasher.Verify(Encoding.UTF8.GetBytes("correct horsE"), hash));
        Assert.NotEqual(hash, MqttPasswordHasher.Hash("correct horse", iterations: 1000));
        Assert.False(MqttPasswordHasher.Verify("x"u8, "plain-text"));
        Assert.False(MqttPasswordHasher.Verify("x"u8, "pbkdf2-sha256$10$not-base64$!!"));
    }

    [Fact]
    public void Users_and_acl_files_load_and_bad_lines_are_reported_with_their_line()
    {
        var dir = Directory.CreateTempSubdirectory("cloudedge-mqtt-files-");
        try
        {
            var users = Path.Combine(dir.FullName, "users.txt");
            File.WriteAllLines(users, ["# devices", "alice:" + MqttPasswordHasher.Hash("a", 1000), "", "bob:" + MqttPasswordHasher.Hash("b", 1000)]);
            var acl = Path.Combine(dir.FullName, "acl.txt");
            File.WriteAllLines(acl, ["publish * devices/{clientid}/#", "subscribe ops #", "all * public/+/status"]);
            var options = new MqttBrokerOptions();
            MqttBrokerFiles.LoadUsers(users, options);
            MqttBrokerFiles.LoadAcl(acl, options);
            Assert.Equal(["alice", "bob"], options.Users.Keys.Order());
            Assert.Equal(3, options.AclRules.Count);
            Assert.Equal(MqttAclAccess.Publish, options.AclRules[0].Access);
            Assert.Null(options.AclRules[0].UserName);
            Assert.Equal("ops", options.AclRules[1].UserName);

            File.WriteAllLines(acl, ["publish * ok/#", "write * x"]);
            var error = Assert.Throws<FormatException>(() => MqttBrokerFiles.LoadAcl(acl, new MqttBrokerOptions()));
            Assert.Contains(":2:", error.Message);
            File.WriteAllLines(acl, ["publish * a/#/b"]);
            Assert.Throws<FormatException>(() => MqttBrokerFiles.LoadAcl(acl, new MqttBrokerOptions()));
            File.WriteAllLines(users, ["carol:secret"]);
            Assert.Throws<FormatException>(() => MqttBrokerFiles.LoadUsers(users, new MqttBrokerOptions()));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Client_ids_with_wildcards_or_slashes_cannot_widen_their_acl()
    {
        await using var server = await TestBroker.StartAsync(o => o.AclRules.Add(new MqttAclRule { Topic = "devices/{clientid}/#" }));
        foreach (var sneaky in new[] { "+", "#", "a/b" })
        {
            await using var c = await RawClient.ConnectOkAsync(server.TcpPort!.Value, sneaky);
            await c.SendAsync(new MqttSubscribePacket { PacketId = 1, Subscriptions = [new MqttSubscription { TopicFilter = $"devices/{sneaky}/#" }] });
            var ack = await c.ReceiveAsync<MqttSubAckPacket>();
            Assert.NotEqual(MqttReasonCode.Success, ack.ReasonCodes[0]);
        }
    }
}

public sealed class BrokerOptionsValidationTests
{
    [Fact]
    public void Options_the_protocol_cannot_express_are_refused_at_startup()
    {
        new MqttBrokerOptions().Validate();
        Assert.Throws<ArgumentOutOfRangeException>(() => new MqttBrokerOptions { ReceiveMaximum = 0 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new MqttBrokerOptions { MaximumPacketSize = 10 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new MqttBrokerOptions { MaximumQueuedMessagesPerSession = 0 }.Validate());
        var options = new MqttBrokerOptions();
        options.AclRules.Add(new MqttAclRule { Topic = "a/#/{clientid}" });
        Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
    }
}
