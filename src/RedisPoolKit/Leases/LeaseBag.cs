using System.Diagnostics;

namespace RedisPoolKit;

/// <summary>
/// The lease pool's shared state, under one lock: the idle entries, the waiters, every entry by its index and the
/// counters whose rules tie them together. Nothing else changes them, and every change ends in
/// <see cref="AssertInvariantsLocked"/>, the one place those rules are written down.
/// </summary>
/// <remarks>
/// Callers hold <see cref="Lock"/> around each decision about who gets an entry (borrower, waiter, evictor,
/// disposal) and make it through the <c>...Locked</c> methods here, so a slot is never lost or handed twice.
/// Idle entries exist only while nobody waits, so a newcomer never overtakes a waiter.
/// </remarks>
internal sealed class LeaseBag
{
    private readonly int _maxLeases;
    private readonly int _minIdle;

    // Ordered by the time each entry became idle: borrowers take the newest, eviction the oldest.
    private readonly List<LeaseEntry> _idle;
    private readonly LinkedList<LeaseWaiter> _waiters = new();

    // Every entry by its index until its socket is closed: held entries are found here by their state. An index is
    // reserved from the start of its connect, before there is an entry to store.
    private readonly LeaseEntry?[] _entries;
    private readonly bool[] _indexInUse;
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Sockets open, being opened or being closed: a slot is free only once its socket is gone.
    private int _sockets;
    private int _used;
    private bool _creating;
    private bool _minIdleSuspended;
    private bool _disposed;
    private long _tickets;

    // The newest waiter told to wait for a lease to come back while the breaker refused new sockets: it and those
    // before it keep their places (see RefuseNewWaitersLocked).
    private long _keptThroughTicket;
    private long _handOffs;
    private long _leaseIds;
    private long _rejectedTimeout;
    private long _rejectedWaitersFull;
    private Exception? _lastCreateFailure;

    public LeaseBag(int maxLeases, int minIdle)
    {
        _maxLeases = maxLeases;
        _minIdle = minIdle;
        _idle = new List<LeaseEntry>(maxLeases);
        _entries = new LeaseEntry?[maxLeases];
        _indexInUse = new bool[maxLeases];
    }

    public Lock Lock { get; } = new();

    public int Sockets { get { lock (Lock) { return _sockets; } } }

    public int Idle { get { lock (Lock) { return _idle.Count; } } }

    public int Used { get { lock (Lock) { return _used; } } }

    public int Waiters { get { lock (Lock) { return _waiters.Count; } } }

    public long RejectedTimeout => Interlocked.Read(ref _rejectedTimeout);

    public long RejectedWaitersFull => Interlocked.Read(ref _rejectedWaitersFull);

    /// <summary>The last connect's failure; a success clears it. Read without the lock for an exception's inner exception.</summary>
    public Exception? LastCreateFailure => Volatile.Read(ref _lastCreateFailure);

    /// <summary>Completes once the bag is disposed and every socket is closed.</summary>
    public Task Drained => _drained.Task;

    public bool IsDisposedLocked => _disposed;

    public int UsedLocked => _used;

    public int WaitingLocked => _waiters.Count;

    public bool HasFreeSlotLocked => _sockets < _maxLeases;

    /// <summary>The idle entries, oldest first; change them only through the methods below.</summary>
    public IReadOnlyList<LeaseEntry> IdleLocked => _idle;

    public LeaseCounts CountsLocked() => new(_idle.Count, _used, _waiters.Count, _sockets, _maxLeases);

    /// <summary>Removing an entry from the idle list under the lock is the reservation: no borrower can see it any more.</summary>
    public LeaseEntry RemoveIdleAtLocked(int index)
    {
        var entry = _idle[index];
        _idle.RemoveAt(index);
        entry.State = LeaseEntryState.Closing;
        AssertInvariantsLocked();
        return entry;
    }

    /// <summary>Reserves <paramref name="entry"/> (just taken from idle, or handed from one lease to the next) for one new lease: the id that lease's handle will carry.</summary>
    public void MarkLeasedLocked(LeaseEntry entry, bool wasLeased)
    {
        entry.State = LeaseEntryState.Leased;
        if (!wasLeased)
        {
            _used++;
        }

        Volatile.Write(ref entry.LeaseId, ++_leaseIds);
        AssertInvariantsLocked();
    }

    /// <summary>A leased entry that must not be reused: its slot stays counted until <see cref="RemoveClosedLocked"/>.</summary>
    public void MarkClosingLocked(LeaseEntry entry)
    {
        entry.State = LeaseEntryState.Closing;
        _used--;
        AssertInvariantsLocked();
    }

    /// <summary>Hands a usable entry to the first waiter, or makes it idle when nobody waits; returns the waiter served.</summary>
    public LeaseWaiter? HandOffOrIdleLocked(LeaseEntry entry, long now, bool wasLeased)
    {
        if (_waiters.First is { } first)
        {
            _waiters.RemoveFirst();
            var waiter = first.Value;
            waiter.HandOff = ++_handOffs;
            MarkLeasedLocked(entry, wasLeased);
            return waiter;
        }

        entry.State = LeaseEntryState.Idle;
        if (wasLeased)
        {
            _used--;
        }

        entry.IdleSince = now;
        _idle.Add(entry);
        AssertInvariantsLocked();
        return null;
    }

    /// <summary>Queues a caller for the next entry; it is served first come, first served.</summary>
    public LeaseWaiter EnqueueWaiterLocked()
    {
        var waiter = new LeaseWaiter(++_tickets);
        waiter.Node = _waiters.AddLast(waiter);
        AssertInvariantsLocked();
        return waiter;
    }

    /// <summary>Takes a waiter out of the queue; false when an entry (or a failure) was handed to it already.</summary>
    public bool TryRemoveWaiterLocked(LeaseWaiter waiter)
    {
        if (waiter.Node!.List is null)
        {
            return false;
        }

        _waiters.Remove(waiter.Node);
        AssertInvariantsLocked();
        return true;
    }

    public LeaseWaiter? RemoveFirstWaiterLocked()
    {
        if (_waiters.First is not { } first)
        {
            return null;
        }

        _waiters.RemoveFirst();
        AssertInvariantsLocked();
        return first.Value;
    }

    public LeaseWaiter? RemoveLastWaiterLocked()
    {
        if (_waiters.Last is not { } last)
        {
            return null;
        }

        _waiters.RemoveLast();
        AssertInvariantsLocked();
        return last.Value;
    }

    /// <summary>
    /// While the breaker refuses new sockets: takes up to <paramref name="max"/> waiters, newest first, from those
    /// queued since the last call, and keeps the rest waiting for a lease to come back. A waiter kept is never taken
    /// by a later call: a caller told to wait keeps its place whoever comes after it.
    /// </summary>
    public List<LeaseWaiter>? RefuseNewWaitersLocked(int max)
    {
        List<LeaseWaiter>? refused = null;
        while ((refused?.Count ?? 0) < max && _waiters.Last is { } last && last.Value.Ticket > _keptThroughTicket)
        {
            _waiters.RemoveLast();
            (refused ??= []).Add(last.Value);
        }

        if (_waiters.Last is { } kept)
        {
            _keptThroughTicket = kept.Value.Ticket;
        }

        AssertInvariantsLocked();
        return refused;
    }

    /// <summary>Sockets still to open for the callers a new socket would serve: every slot neither leased nor idle.</summary>
    public int SlotsToOpenLocked() => Math.Max(0, _maxLeases - _used - _idle.Count);

    /// <summary>Whether a socket should be opened now: a caller waits, or idle sockets are below MinIdle.</summary>
    public bool NeedsSocketLocked() =>
        !_disposed && HasFreeSlotLocked && (_waiters.Count > 0 || (!_minIdleSuspended && _idle.Count < _minIdle));

    /// <summary>Claims the one creator's role when a socket is needed and no creator runs; the caller then starts it.</summary>
    public bool TryStartCreatingLocked()
    {
        if (_creating || !NeedsSocketLocked())
        {
            return false;
        }

        _creating = true;
        return true;
    }

    public void StopCreatingLocked() => _creating = false;

    /// <summary>While suspended, idle sockets are not opened to reach MinIdle (the breaker refuses them anyway).</summary>
    public void SuspendMinIdleLocked(bool suspended) => _minIdleSuspended = suspended;

    /// <summary>Counts the socket the creator is about to open and reserves its index (part of its client name).</summary>
    public int ReserveIndexLocked()
    {
        var index = Array.IndexOf(_indexInUse, false);
        _indexInUse[index] = true;
        _sockets++;
        AssertInvariantsLocked();
        return index;
    }

    /// <summary>A connect failed: its slot is free again.</summary>
    public void ReleaseIndexLocked(int index, Exception failure)
    {
        _sockets--;
        _indexInUse[index] = false;
        _lastCreateFailure = failure;
        SignalIfDrainedLocked();
        AssertInvariantsLocked();
    }

    /// <summary>A connect succeeded: the entry goes to the first waiter or to idle; false when the bag was disposed meanwhile (the entry is then closing).</summary>
    public bool PlaceCreatedLocked(LeaseEntry entry, long now, out LeaseWaiter? waiter)
    {
        _entries[entry.Index] = entry;
        _lastCreateFailure = null;
        if (_disposed)
        {
            entry.State = LeaseEntryState.Closing;
            waiter = null;
            AssertInvariantsLocked();
            return false;
        }

        waiter = HandOffOrIdleLocked(entry, now, wasLeased: false);
        return true;
    }

    /// <summary>An entry's socket is closed: its slot is free.</summary>
    public void RemoveClosedLocked(LeaseEntry entry)
    {
        entry.State = LeaseEntryState.Closed;
        _sockets--;
        _indexInUse[entry.Index] = false;
        _entries[entry.Index] = null;
        SignalIfDrainedLocked();
        AssertInvariantsLocked();
    }

    public void CountTimeoutLocked() => _rejectedTimeout++;

    public void CountWaitersFullLocked() => _rejectedWaitersFull++;

    /// <summary>Marks the bag disposed and empties it of waiters and idle entries (now closing); false when it was disposed already.</summary>
    public bool TryDisposeLocked(out List<LeaseWaiter> waiters, out List<LeaseEntry> idle)
    {
        waiters = [];
        idle = [];
        if (_disposed)
        {
            return false;
        }

        waiters.AddRange(_waiters);
        _waiters.Clear();
        while (_idle.Count > 0)
        {
            idle.Add(RemoveIdleAtLocked(_idle.Count - 1));
        }

        _disposed = true;
        SignalIfDrainedLocked();
        AssertInvariantsLocked();
        return true;
    }

    /// <summary>The entries leased now.</summary>
    public IEnumerable<LeaseEntry> LeasedLocked() => _entries.Where(e => e?.State == LeaseEntryState.Leased).Select(e => e!);

    /// <summary>Takes back every entry still leased after disposal's grace period; each is closing from now on.</summary>
    public List<LeaseEntry> TakeLeasedLocked()
    {
        List<LeaseEntry> held = [.. _entries.Where(e => e?.State == LeaseEntryState.Leased).Select(e => e!)];
        foreach (var entry in held)
        {
            entry.State = LeaseEntryState.Closing;
        }

        _used = 0;
        AssertInvariantsLocked();
        return held;
    }

    private void SignalIfDrainedLocked()
    {
        if (_disposed && _sockets == 0)
        {
            _drained.TrySetResult();
        }
    }

    /// <summary>The rules every change above keeps.</summary>
    [Conditional("DEBUG")]
    private void AssertInvariantsLocked()
    {
        Debug.Assert(Lock.IsHeldByCurrentThread, "The bag is changed under its lock only.");
        Debug.Assert(_used >= 0 && _used + _idle.Count <= _sockets && _sockets <= _maxLeases, $"0 <= used ({_used}) + idle ({_idle.Count}) <= sockets ({_sockets}) <= MaxLeases ({_maxLeases})");
        Debug.Assert(_idle.Count == 0 || _waiters.Count == 0, "Idle entries exist only while nobody waits.");
        Debug.Assert(_indexInUse.Count(inUse => inUse) == _sockets, "Every socket open, opening or closing holds one index.");
        Debug.Assert(_entries.Count(e => e?.State == LeaseEntryState.Leased) == _used, "Used counts the leased entries.");
        Debug.Assert(_idle.TrueForAll(e => e.State == LeaseEntryState.Idle && ReferenceEquals(_entries[e.Index], e)), "Idle entries are idle and known by their index.");
        Debug.Assert(!_disposed || (_idle.Count == 0 && _waiters.Count == 0), "A disposed bag keeps no idle entry and no waiter.");
        Debug.Assert(!_disposed || _sockets > 0 || _drained.Task.IsCompleted, "Disposal completes once every socket is closed.");
        for (var i = 0; i < _entries.Length; i++)
        {
            Debug.Assert(_entries[i] is null || _indexInUse[i], "An entry's index stays reserved until its socket is closed.");
        }
    }
}

/// <summary>The counts a rejection or timeout message reports, read under the bag's lock.</summary>
internal readonly record struct LeaseCounts(int Idle, int Used, int Waiting, int Sockets, int MaxLeases)
{
    public int OpeningOrClosing => Sockets - Idle - Used;

    public int NotLeased => MaxLeases - Used - Idle;
}

/// <summary>A caller waiting for an entry; completed with the entry handed over, or with the reason none will come.</summary>
internal sealed class LeaseWaiter(long ticket) : TaskCompletionSource<LeaseEntry>(TaskCreationOptions.RunContinuationsAsynchronously)
{
    /// <summary>The order in which this caller started waiting.</summary>
    public long Ticket { get; } = ticket;

    public LinkedListNode<LeaseWaiter>? Node { get; set; }

    /// <summary>The order in which waiters were served.</summary>
    public long HandOff { get; set; }
}
