namespace RedisPoolKit;

/// <summary>
/// The messages of the lease pool's rejections and timeouts: each names what was full, the counts at the time
/// (<see cref="LeaseCounts"/>, read under the bag's lock) and the option to raise.
/// </summary>
internal sealed class LeaseRejectionMessages(string poolName, RedisPoolLeaseOptions options, Func<string> describeBudget)
{
    /// <summary>Callers beyond <see cref="RedisPoolLeaseOptions.MaxWaiters"/> (and the sockets being opened for them) already wait.</summary>
    public string WaitersFull(LeaseCounts counts, int slotsToOpen) =>
        $"Pool '{poolName}' rejected a lease request at once: {counts.Waiting} callers already wait, {Math.Min(slotsToOpen, counts.Waiting)} of them for sockets being opened and the rest up to the limit 'Leases.MaxWaiters' ({options.MaxWaiters}) for leases to come back; {Counts(counts)}. Raise 'Leases.MaxWaiters', 'Leases.MaxLeases' or 'MaxConnections', or hold leases for less time.";

    /// <summary>A wait ran out of <see cref="RedisPoolLeaseOptions.AcquireTimeout"/>; <paramref name="lastCreateFailure"/> is the last connect's failure, if any.</summary>
    public string LeaseTimeout(LeaseCounts counts, Exception? lastCreateFailure)
    {
        // The last connect failed (a success clears it) and not every slot is leased: the wait was for a socket that
        // could not be opened, not for MaxLeases.
        if (lastCreateFailure is { } failure && counts.NotLeased > 0)
        {
            return $"{TimedOut()} with {counts.NotLeased} of 'Leases.MaxLeases' ({options.MaxLeases}) slots not leased: opening lease sockets is failing ({ExceptionText.Brief(failure)}); {Counts(counts)}. Fix what the inner exception reports (server, network, breaker), or raise 'Leases.AcquireTimeout' to ride out longer outages.";
        }

        return $"{TimedOut()}: {Counts(counts)}. Raise 'Leases.MaxLeases' (currently {options.MaxLeases}), 'Leases.AcquireTimeout' or 'MaxConnections', or hold leases for less time.";
    }

    /// <summary>The time left ran out while stale idle sockets failed their <c>PING</c>.</summary>
    public string ValidationTimeout(LeaseCounts counts) =>
        $"{TimedOut()}: idle sockets, idle longer than 'Leases.ValidateAfterIdle' ({RedisPoolOptionsValidator.Format(options.ValidateAfterIdle)}), did not answer PING in the time left and were closed; {Counts(counts)}. Check the network and server health, or raise 'Leases.AcquireTimeout'.";

    private string TimedOut() =>
        $"Pool '{poolName}' could not lease a connection within 'Leases.AcquireTimeout' ({RedisPoolOptionsValidator.Format(options.AcquireTimeout)})";

    private string Counts(LeaseCounts counts) =>
        $"{counts.Idle} idle and {counts.Used} used of 'Leases.MaxLeases' ({counts.MaxLeases}), {counts.Waiting} waiting, {counts.OpeningOrClosing} opening or closing; budget: {describeBudget()} ('MaxConnections')";
}
