using StackExchange.Redis;

namespace RedisPoolKit.Tests.Generators;

public class PooledMultiplexerTests
{
    [Fact]
    public async Task Facade_never_disposes_or_closes_the_primary()
    {
        var (primary, recorder) = RecordingProxy.Create<IConnectionMultiplexer>();
        var facade = new PooledMultiplexer(() => primary, (_, _) => throw new InvalidOperationException("not used"));

        facade.Dispose();
        await facade.DisposeAsync();
        facade.Close();
        await facade.CloseAsync();

        Assert.Empty(recorder.Calls);
    }

    [Fact]
    public void Facade_hands_out_the_routed_database_and_forwards_the_rest_to_the_current_primary()
    {
        var (first, firstCalls) = RecordingProxy.Create<IConnectionMultiplexer>();
        var (second, secondCalls) = RecordingProxy.Create<IConnectionMultiplexer>();
        firstCalls.Results["GetStatus"] = "first";
        secondCalls.Results["GetStatus"] = "second";
        var (database, _) = RecordingProxy.Create<IDatabase>();
        var current = first;
        var asked = new List<(int, object?)>();
        var facade = new PooledMultiplexer(() => current, (db, state) =>
        {
            asked.Add((db, state));
            return database;
        });

        Assert.Same(database, facade.GetDatabase(3, "state"));
        Assert.Same(database, facade.GetDatabase());
        Assert.Equal([(3, (object?)"state"), (-1, null)], asked);

        EventHandler<ConnectionFailedEventArgs> handler = (_, _) => { };
        facade.ConnectionFailed += handler;
        Assert.Equal("first", facade.GetStatus());
        current = second;
        Assert.Equal("second", facade.GetStatus());
        facade.ConnectionFailed -= handler;

        Assert.Equal(["add_ConnectionFailed", "GetStatus"], firstCalls.Calls.Select(c => c.Name));
        Assert.Equal(["GetStatus", "remove_ConnectionFailed"], secondCalls.Calls.Select(c => c.Name));
        Assert.Same(handler, firstCalls.Calls[0].Args[0]);
    }
}
