using System.Net;
using StackExchange.Redis;

namespace RedisPoolKit.Tests.Leases;

public sealed class ClusterLeaseRoutingTests
{
    [Fact]
    public void A_single_node_lease_socket_may_not_send_CLUSTER_and_keeps_the_configurations_own_command_map()
    {
        var configured = ConfigurationOptions.Parse("127.0.0.1:7000,$CONFIG=,$CLIENT=MYCLIENT").CommandMap;

        var text = RedisConnectionFactory.WithoutCluster(configured).ToString();

        Assert.Contains("$CLUSTER=", text, StringComparison.Ordinal);
        Assert.Contains("$CONFIG=", text, StringComparison.Ordinal);
        Assert.Contains("$CLIENT=MYCLIENT", text, StringComparison.Ordinal);
        Assert.Equal("$CLUSTER=", RedisConnectionFactory.WithoutCluster(CommandMap.Default).ToString());
    }

    [Theory]
    [InlineData(typeof(RedisServerException), "Key has MOVED to Endpoint 127.0.0.1:7002 and hashslot 8352 but CommandFlags.NoRedirect was specified - redirect not followed for BLPOP.", "127.0.0.1:7002")]
    [InlineData(typeof(RedisConnectionException), "Endpoint 127.0.0.1:7001 serving hashslot 12 is not reachable at this point of time. Please check connectTimeout value.", "127.0.0.1:7001")]
    [InlineData(typeof(RedisConnectionException), "Endpoint redis-b.local:6379 serving hashslot 12 is not reachable at this point of time.", "redis-b.local:6379")]
    public void A_redirect_names_the_node_to_follow(Type type, string message, string node)
    {
        var exception = type == typeof(RedisServerException)
            ? (Exception)new RedisServerException(RedisErrorKind.Unknown, CommandFlags.NoRedirect, message)
            : new RedisConnectionException(ConnectionFailureType.UnableToConnect, CommandFlags.NoRedirect, message);

        var target = LeaseRedirect.Target(exception);

        Assert.NotNull(target);
        Assert.Equal(node, RedisConnectionFactory.Format(target));
    }

    [Fact]
    public void Other_failures_are_not_redirects()
    {
        Assert.Null(LeaseRedirect.Target(new RedisConnectionException(ConnectionFailureType.SocketClosed, CommandFlags.None, "SocketClosed on 127.0.0.1:7000/Interactive")));
        Assert.Null(LeaseRedirect.Target(new TimeoutException("Endpoint 127.0.0.1:7001 serving hashslot 12 is not reachable")));
    }

    [Fact]
    public void Keys_of_different_slots_are_refused_before_sending_and_the_message_names_hash_tags()
    {
        var leases = new ClusterLeases((_, _) => throw new InvalidOperationException("no pool is made here"), key => ((string?)key)!.StartsWith("{a}", StringComparison.Ordinal) ? 1 : 2);

        leases.ThrowIfCrossSlot("BLPOP", ["{a}:1", "{a}:2"]);
        leases.ThrowIfCrossSlot("BLPOP", ["single"]);
        var refused = Assert.Throws<ArgumentException>(() => leases.ThrowIfCrossSlot("BLPOP", ["{a}:1", "b"]));

        Assert.Contains("'{a}:1' is in slot 1, 'b' in slot 2", refused.Message, StringComparison.Ordinal);
        Assert.Contains("hash tag", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_second_redirect_says_so_names_both_nodes_and_is_not_itself_followed()
    {
        var again = new RedisConnectionException(ConnectionFailureType.UnableToResolvePhysicalConnection, CommandFlags.None, "Endpoint 127.0.0.1:7002 serving hashslot 12 is not reachable at this point of time.");

        var twice = LeaseRedirect.Twice("StringSet", 7, IPEndPoint.Parse("127.0.0.1:7000"), IPEndPoint.Parse("127.0.0.1:7001"), LeaseRedirect.Target(again)!, again);

        var connection = Assert.IsType<RedisConnectionException>(twice);
        Assert.Equal(ConnectionFailureType.UnableToResolvePhysicalConnection, connection.FailureType);
        Assert.Same(again, twice.InnerException);
        Assert.Equal(
            "StringSet on lease 7 was redirected twice and did not run: 127.0.0.1:7000 answered that its slot is served by 127.0.0.1:7001, and 127.0.0.1:7001 then named 127.0.0.1:7002. The slot is still moving (a resharding in progress); a lease follows one redirect. Retry the command, or dispose the lease and take a new one for the key once the migration is done.",
            twice.Message);
        Assert.Null(LeaseRedirect.Target(twice));
    }
}
