namespace RedisPoolKit.Tests.Connections;

public sealed class RedisConnectionFactoryTests
{
    [Fact]
    public void The_abortConnect_advice_of_StackExchange_Redis_is_cut_from_pool_messages()
    {
        const string message = "It was not possible to connect to the redis server(s). Error connecting right now. To allow this multiplexer to continue retrying until it's able to connect, use abortConnect=false in your connection string or AbortOnConnectFail=false; in your code.";

        var cut = RedisConnectionFactory.WithoutAbortConnectAdvice(message);

        Assert.Equal("It was not possible to connect to the redis server(s). Error connecting right now.", cut);
        Assert.Equal("unchanged", RedisConnectionFactory.WithoutAbortConnectAdvice("unchanged"));
    }
}
