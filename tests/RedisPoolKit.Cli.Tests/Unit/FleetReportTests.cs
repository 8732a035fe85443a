using RedisPoolKit.Cli.Inspect;
using RedisPoolKit.Cli.Redis;
using StackExchange.Redis;

namespace RedisPoolKit.Cli.Tests.Unit;

public sealed class FleetReportTests
{
    [Theory]
    [InlineData("redispoolkit:fleet:{orders:cache}", true, "orders", "cache")]
    [InlineData("redispoolkit:fleet:{order-service.v2:default}", true, "order-service.v2", "default")]
    [InlineData("redispoolkit:fleet:orders:cache", false, "", "")]
    [InlineData("redispoolkit:fleet:{orders}", false, "", "")]
    [InlineData("redispoolkit:fleet:{a:b:c}", false, "", "")]
    [InlineData("redispoolkit:fleet:{:cache}", false, "", "")]
    [InlineData("other:{orders:cache}", false, "", "")]
    public void Only_the_key_the_library_writes_parses(string key, bool parses, string service, string pool)
    {
        Assert.Equal(parses, FleetReader.TryParseKey(key, out var s, out var p));
        Assert.Equal((service, pool), (s, p));
        if (parses)
        {
            Assert.Equal(key, FleetReader.KeyFor(s, p));
        }
    }

    [Fact]
    public void Registrations_parse_from_the_flat_RESP2_reply_and_the_paired_RESP3_one()
    {
        var flat = RedisResult.Create([RedisResult.Create((RedisValue)"pod-a"), RedisResult.Create((RedisValue)"1796190666635"), RedisResult.Create((RedisValue)"pod-b"), RedisResult.Create((RedisValue)"1796190660000")]);
        var paired = RedisResult.Create(
        [
            RedisResult.Create([RedisResult.Create((RedisValue)"pod-a"), RedisResult.Create((RedisValue)1796190666635d)]),
            RedisResult.Create([RedisResult.Create((RedisValue)"pod-b"), RedisResult.Create((RedisValue)1796190660000d)]),
        ]);

        FleetRegistration[] expected = [new("pod-a", 1796190666635), new("pod-b", 1796190660000)];
        Assert.Equal(expected, FleetReader.ParseWithScores(flat));
        Assert.Equal(expected, FleetReader.ParseWithScores(paired));
        Assert.Empty(FleetReader.ParseWithScores(RedisResult.Create(Array.Empty<RedisResult>())));
    }

    [Fact]
    public void TIME_is_read_as_unix_milliseconds()
    {
        var time = RedisResult.Create([RedisResult.Create((RedisValue)"1796190666"), RedisResult.Create((RedisValue)"635123")]);

        Assert.Equal(1796190666635, FleetReader.ParseTime(time));
    }

    [Fact]
    public void Each_registration_is_live_or_expired_by_the_server_clock_and_sockets_come_from_every_master()
    {
        const long Now = 1_000_000;
        var first = Snapshots.Server([Snapshots.Client("orders:pod-a:cache:mux0"), Snapshots.Client("orders:pod-a:cache:lease0"), Snapshots.Client("orders:pod-c:cache:mux0"), Snapshots.Client("orders:pod-a:other:mux0"), Snapshots.Client("billing:pod-a:cache:mux0")]);
        var second = new ServerSnapshot { Endpoint = "127.0.0.1:6380", At = DateTimeOffset.UnixEpoch, Clients = [Snapshots.Client("orders:pod-a:cache:mux0")] };
        var key = new FleetKeySnapshot("127.0.0.1:6379", "redispoolkit:fleet:{orders:cache}", "orders", "cache", Now, [new("pod-a", Now + 5_000), new("pod-b", Now), new("pod-gone", Now - 1)]);

        var fleet = Assert.Single(ClientGrouping.Fleets([first, second], [key]));

        Assert.Equal(2, fleet.Live);
        Assert.Equal(1, fleet.Expired);
        Assert.Equal(4, fleet.Sockets);
        Assert.Equal([new FleetNodeSockets("127.0.0.1:6379", 3), new FleetNodeSockets("127.0.0.1:6380", 1)], fleet.Nodes);
        Assert.Equal(
            [
                new FleetInstanceReport("pod-a", "live", 5_000, 3),
                new FleetInstanceReport("pod-b", "live", 0, 0),
                new FleetInstanceReport("pod-gone", "expired", -1, 0),
                new FleetInstanceReport("pod-c", "unregistered", null, 1),
            ],
            fleet.Instances);
    }

    [Fact]
    public void Without_CLIENT_LIST_anywhere_the_sockets_are_unknown_not_zero()
    {
        var refused = new ServerSnapshot { Endpoint = "127.0.0.1:6379", At = DateTimeOffset.UnixEpoch };
        var key = new FleetKeySnapshot("127.0.0.1:6379", "redispoolkit:fleet:{orders:cache}", "orders", "cache", 10, [new("pod-a", 20)]);

        var fleet = Assert.Single(ClientGrouping.Fleets([refused], [key]));

        Assert.Null(fleet.Sockets);
        Assert.Empty(fleet.Nodes);
        Assert.Null(Assert.Single(fleet.Instances).Sockets);
    }
}
