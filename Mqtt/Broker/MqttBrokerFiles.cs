namespace CloudEdge.Mqtt.Broker;

/// <summary>
/// The text files BrokerHost reads. Users file: one <c>username:hash</c> per line (hash from
/// <see cref="MqttPasswordHasher.Hash"/>). ACL file: one allow rule per line,
/// <c>&lt;publish|subscribe|all&gt; &lt;username|*&gt; &lt;topic pattern&gt;</c>. '#' starts a comment line.
/// </summary>
public static class MqttBrokerFiles
{
    public static void LoadUsers(string path, MqttBrokerOptions options)
    {
        var lineNumber = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var colon = line.IndexOf(':');
            if (colon <= 0 || !line[(colon + 1)..].StartsWith("pbkdf2-sha256$", StringComparison.Ordinal))
            {
                throw new FormatException($"{path}:{lineNumber}: expected 'username:pbkdf2-sha256$...'.");
            }
            options.Users[line[..colon]] = line[(colon + 1)..];
        }
    }

    public static void LoadAcl(string path, MqttBrokerOptions options)
    {
        var lineNumber = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var parts = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (parts.Length != 3) throw new FormatException($"{path}:{lineNumber}: expected '<publish|subscribe|all> <username|*> <topic pattern>'.");
            var access = parts[0] switch
            {
                "publish" => MqttAclAccess.Publish,
                "subscribe" => MqttAclAccess.Subscribe,
                "all" => MqttAclAccess.PublishAndSubscribe,
                _ => throw new FormatException($"{path}:{lineNumber}: unknown access '{parts[0]}'."),
            };
            var probe = parts[2].Replace("{clientid}", "x", StringComparison.Ordinal).Replace("{username}", "x", StringComparison.Ordinal);
            if (!MqttTopic.IsValidTopicFilter(probe)) throw new FormatException($"{path}:{lineNumber}: '{parts[2]}' is not a valid topic filter.");
            options.AclRules.Add(new MqttAclRule { Access = access, UserName = parts[1] == "*" ? null : parts[1], Topic = parts[2] });
        }
    }
}
