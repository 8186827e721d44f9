namespace CloudEdge.Mqtt.Tests;

public sealed class TopicTests
{
    [Theory]
    [InlineData("sport/tennis/player1/#", "sport/tennis/player1", true)]
    [InlineData("sport/tennis/player1/#", "sport/tennis/player1/ranking", true)]
    [InlineData("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true)]
    [InlineData("sport/#", "sport", true)]
    [InlineData("#", "a/b/c", true)]
    [InlineData("#", "/", true)]
    [InlineData("sport/tennis/+", "sport/tennis/player1", true)]
    [InlineData("sport/tennis/+", "sport/tennis/player1/ranking", false)]
    [InlineData("sport/+", "sport", false)]
    [InlineData("sport/+", "sport/", true)]
    [InlineData("+/+", "/finance", true)]
    [InlineData("/+", "/finance", true)]
    [InlineData("+", "/finance", false)]
    [InlineData("a/b", "a/b", true)]
    [InlineData("a/b", "a/b/c", false)]
    [InlineData("a/b/c", "a/b", false)]
    [InlineData("A/b", "a/b", false)]
    [InlineData("#", "$SYS/broker", false)]
    [InlineData("+/monitor/Clients", "$SYS/monitor/Clients", false)]
    [InlineData("$SYS/#", "$SYS/broker", true)]
    [InlineData("$SYS/monitor/+", "$SYS/monitor/Clients", true)]
    public void Matching_follows_section_4_7(string filter, string topic, bool expected) =>
        Assert.Equal(expected, MqttTopic.Matches(filter, topic));

    [Theory]
    [InlineData("a/b", true)]
    [InlineData("#", true)]
    [InlineData("+", true)]
    [InlineData("a/+/b/#", true)]
    [InlineData("/", true)]
    [InlineData("", false)]
    [InlineData("a/#/b", false)]
    [InlineData("a#", false)]
    [InlineData("a/b+", false)]
    [InlineData("a/+b/c", false)]
    [InlineData("a\0", false)]
    public void Filter_validation(string filter, bool valid) => Assert.Equal(valid, MqttTopic.IsValidTopicFilter(filter));

    [Theory]
    [InlineData("a/b", true)]
    [InlineData("/", true)]
    [InlineData("", false)]
    [InlineData("a/+", false)]
    [InlineData("a/#", false)]
    public void Topic_name_validation(string topic, bool valid) => Assert.Equal(valid, MqttTopic.IsValidTopicName(topic));

    [Fact]
    public void Shared_subscriptions_are_parsed()
    {
        Assert.True(MqttTopic.TryParseShared("$share/g1/sensors/+/temp", out var group, out var inner, out var valid));
        Assert.True(valid);
        Assert.Equal("g1", group);
        Assert.Equal("sensors/+/temp", inner);
        Assert.True(MqttTopic.TryParseShared("$share/g+/x", out _, out _, out valid));
        Assert.False(valid);
        Assert.True(MqttTopic.TryParseShared("$share/g1", out _, out _, out valid));
        Assert.False(valid);
        Assert.True(MqttTopic.TryParseShared("$share//x", out _, out _, out valid));
        Assert.False(valid);
        Assert.False(MqttTopic.TryParseShared("sensors/#", out _, out inner, out _));
        Assert.Equal("sensors/#", inner);
    }

    [Theory]
    [InlineData("devices/d1/#", "devices/d1/temp", true)]
    [InlineData("devices/d1/#", "devices/d1/+", true)]
    [InlineData("devices/d1/#", "devices/d1/#", true)]
    [InlineData("devices/d1/#", "devices/d1", true)]
    [InlineData("devices/d1/#", "devices/#", false)]
    [InlineData("devices/d1/#", "devices/+/temp", false)]
    [InlineData("devices/+/temp", "devices/d1/temp", true)]
    [InlineData("devices/+/temp", "devices/+/temp", true)]
    [InlineData("devices/+/temp", "devices/#", false)]
    [InlineData("a/b", "a/b/c", false)]
    public void An_acl_pattern_covers_only_narrower_filters(string pattern, string filter, bool expected) =>
        Assert.Equal(expected, MqttTopic.Covers(pattern, filter));
}
