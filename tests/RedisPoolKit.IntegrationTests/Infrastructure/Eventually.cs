using System.Diagnostics;
using Xunit.Sdk;

namespace RedisPoolKit.IntegrationTests.Infrastructure;

/// <summary>Polls a condition until it holds or a deadline passes: the replacement for fixed sleeps.</summary>
public static class Eventually
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(20);

    /// <summary>Waits until <paramref name="condition"/> returns true; fails with <paramref name="because"/> after <paramref name="timeout"/>.</summary>
    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string because)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var elapsed = Stopwatch.StartNew();
        Exception? last = null;
        var attempts = 0;
        while (true)
        {
            attempts++;
            try
            {
                if (await condition())
                {
                    return;
                }

                last = null;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                last = ex;
            }

            if (elapsed.Elapsed >= timeout)
            {
                throw new XunitException(
                    $"Condition not met within {timeout.TotalMilliseconds:0} ms ({attempts} attempts): {because}"
                    + (last is null ? string.Empty : $"{Environment.NewLine}Last attempt threw: {last}"));
            }

            await Task.Delay(PollInterval);
        }
    }

    /// <summary>Synchronous-condition overload of <see cref="TrueAsync(Func{Task{bool}}, TimeSpan, string)"/>.</summary>
    public static Task TrueAsync(Func<bool> condition, TimeSpan timeout, string because)
    {
        ArgumentNullException.ThrowIfNull(condition);
        return TrueAsync(() => Task.FromResult(condition()), timeout, because);
    }
}
