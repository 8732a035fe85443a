using System.Globalization;

namespace RedisPoolKit.Testing;

/// <summary>Polls a topology until it reaches a state, and says what was still missing when it gives up.</summary>
internal static class TopologyWait
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Calls <paramref name="missing"/> until it returns null (the state is reached). It returns what is still missing
    /// otherwise; an exception counts as missing too. After <paramref name="timeout"/> this throws what
    /// <paramref name="timedOut"/> makes of the last answer.
    /// </summary>
    public static async Task UntilAsync(Func<Task<string?>> missing, TimeSpan timeout, Func<string, Exception> timedOut, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var last = "not checked yet";
        while (true)
        {
            try
            {
                if (await missing().ConfigureAwait(false) is not { } still)
                {
                    return;
                }

                last = still;
            }
            catch (Exception ex) when (ex is not OperationCanceledException and not OutOfMemoryException)
            {
                last = ex.GetType().Name + ": " + ex.Message;
            }

            try
            {
                await Task.Delay(PollInterval, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw timedOut(last);
            }
        }
    }

    /// <summary>The failure of a topology that started its processes but did not form within <paramref name="option"/>.</summary>
    public static Func<string, Exception> NotFormed(string what, string option, TimeSpan timeout, Func<string> logs) =>
        last => new RedisServerStartException(
            RedisServerStartFailure.NotFormed,
            string.Create(CultureInfo.InvariantCulture, $"{what} within {option} ({timeout.TotalSeconds:0.###} s); last check: {last}. Raise {option} if the machine is slow."),
            logs());
}
