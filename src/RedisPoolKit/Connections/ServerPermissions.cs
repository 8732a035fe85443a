using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace RedisPoolKit;

/// <summary>
/// What the server lets this pool do beyond the application's own commands. A least-privilege ACL user, a managed
/// service or a renamed command takes pool features away one by one: each loss is found once, said once (naming
/// the command, what stops working and the ACL rule that restores it), and from then on the feature is skipped
/// instead of failing again.
/// </summary>
internal sealed class ServerPermissions
{
    internal const string NamesRule = "+client|setname";
    internal const string ClientIdRule = "+client|id";
    internal const string UnblockRule = "+client|unblock";

    private readonly string _pool;
    private readonly ILogger _logger;
    private readonly RedisPoolMetrics? _metrics;
    private int _namesChecked;
    private int _namesOff;
    private int _unblockOff;
    private int _cancelCloseSaid;

    public ServerPermissions(string pool, ILogger logger, RedisPoolMetrics? metrics)
    {
        _pool = pool;
        _logger = logger;
        _metrics = metrics;
    }

    /// <summary>False once the server refused <c>CLIENT SETNAME</c>: sockets go unnamed.</summary>
    public bool ClientNames => Volatile.Read(ref _namesOff) == 0;

    /// <summary>False once the server refused <c>CLIENT ID</c> or <c>CLIENT UNBLOCK</c>: a cancelled blocking command closes its socket.</summary>
    public bool Unblock => Volatile.Read(ref _unblockOff) == 0;

    /// <summary>
    /// StackExchange.Redis names a socket during its handshake and ignores a refusal; the first socket of the pool
    /// repeats <c>CLIENT SETNAME</c> so a refusal is seen (and said) once. Later sockets skip the round trip.
    /// </summary>
    public async Task CheckClientNameAsync(ConnectionMultiplexer multiplexer, string clientName, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _namesChecked) != 0)
        {
            return;
        }

        try
        {
            await multiplexer.GetDatabase().ExecuteAsync("CLIENT", "SETNAME", clientName).WaitAsync(timeout, timeProvider, cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _namesChecked, 1);
        }
        catch (Exception ex) when (IsForbidden(ex))
        {
            Volatile.Write(ref _namesChecked, 1);
            if (Interlocked.Exchange(ref _namesOff, 1) == 0)
            {
                Log.PoolFeatureOff(_logger, _pool, "client names", "CLIENT SETNAME", ExceptionText.Brief(ex), "CLIENT LIST shows this pool's sockets without the '{service}:{instance}:{pool}:{role}{index}' names that attribute them", Remedy(ex, "CLIENT", NamesRule));
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Not a refusal: the next socket checks again. A socket that really failed is found by its own user.
        }
    }

    /// <summary>Records that <c>CLIENT ID</c> was refused on a lease socket: its blocking commands cannot be unblocked.</summary>
    public void ClientIdRefused(Exception cause) => UnblockLost("CLIENT ID", cause, ClientIdRule);

    /// <summary>Records that <c>CLIENT UNBLOCK</c> was refused.</summary>
    public void UnblockRefused(Exception cause) => UnblockLost("CLIENT UNBLOCK", cause, UnblockRule);

    /// <summary>A cancelled blocking command closes its lease socket because it cannot be unblocked: counted every time, said once per pool.</summary>
    public void CancelClosesSocket()
    {
        _metrics?.RecordUnblockUnavailable();
        if (Interlocked.Exchange(ref _cancelCloseSaid, 1) == 0)
        {
            Log.CancelClosesLeaseSocket(_logger, _pool);
        }
    }

    /// <summary>
    /// A refusal by permission rather than a failure: NOPERM (ACL), "unknown command" (renamed or disabled, as on
    /// managed services), a command disabled in the configuration's CommandMap, or an admin command on a
    /// multiplexer without admin mode.
    /// </summary>
    internal static bool IsForbidden(Exception ex) => ex switch
    {
        RedisServerException server => server.Kind is RedisErrorKind.NoPermission or RedisErrorKind.NotPermitted or RedisErrorKind.UnknownCommand
            || server.Message.StartsWith("NOPERM", StringComparison.OrdinalIgnoreCase)
            || server.Message.Contains("unknown command", StringComparison.OrdinalIgnoreCase)
            || server.Message.Contains("unknown subcommand", StringComparison.OrdinalIgnoreCase),
        RedisCommandException command => command.Message.Contains("admin mode", StringComparison.OrdinalIgnoreCase)
            || command.Message.Contains("command-map", StringComparison.OrdinalIgnoreCase),
        _ => false,
    };

    /// <summary>
    /// How to get a refused feature back: a command the configuration's own command map disables is restored there,
    /// not by the server's ACL; a command the server does not know may be renamed; anything else is an ACL grant.
    /// </summary>
    internal static string Remedy(Exception cause, string command, string aclRule) => cause switch
    {
        RedisCommandException mapped when mapped.Message.Contains("command-map", StringComparison.OrdinalIgnoreCase) =>
            $"remove '${command}=' from the configuration string's command map, or map {command} to the name the server gives it ('${command}=<name>')",
        RedisServerException unknown when unknown.Message.Contains("unknown command", StringComparison.OrdinalIgnoreCase) =>
            $"if the server renamed {command}, map it in the configuration string ('${command}=<name>'); a service that disables {command} cannot give this feature back",
        _ => $"grant the pool's user the command: ACL SETUSER <user> {aclRule}",
    };

    private void UnblockLost(string command, Exception cause, string rule)
    {
        if (Interlocked.Exchange(ref _unblockOff, 1) == 0)
        {
            Log.PoolFeatureOff(_logger, _pool, "unblocking cancelled blocking commands", command, ExceptionText.Brief(cause), "a cancelled BLPOP/BLMOVE/XREAD BLOCK closes its lease socket instead of returning it (the next lease opens a new one)", Remedy(cause, "CLIENT", rule));
        }
    }
}
