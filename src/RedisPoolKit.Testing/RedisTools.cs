namespace RedisPoolKit.Testing;

/// <summary>What the cluster and the Sentinel set share: finding <c>redis-cli</c> and <c>redis-sentinel</c>, starting processes together, cleaning up.</summary>
internal static class RedisTools
{
    /// <summary>The explicit path if one is set (it must exist), else the first <paramref name="name"/> on <c>PATH</c>, else null.</summary>
    public static string? Find(string? explicitPath, string source, string name)
    {
        if (!string.IsNullOrWhiteSpace(explicitPath))
        {
            return File.Exists(explicitPath)
                ? explicitPath
                : throw new RedisServerStartException(
                    RedisServerStartFailure.NotFound,
                    $"{source} points at '{explicitPath}', which does not exist. Point it at a {name} binary, or unset it to use {name} from PATH.");
        }

        var fileName = OperatingSystem.IsWindows() ? name + ".exe" : name;
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, fileName);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Starts processes together and hands every one that started to <paramref name="own"/>, in order, so its owner stops them even when another failed.</summary>
    public static async Task StartAllAsync<T>(IEnumerable<Task<T>> starts, Action<T> own)
    {
        var tasks = starts.ToArray();
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        finally
        {
            foreach (var task in tasks.Where(t => t.IsCompletedSuccessfully))
            {
                own(task.Result);
            }
        }
    }

    /// <summary>Deletes a directory the harness created, ignoring what is already gone or still locked.</summary>
    public static void TryDeleteDirectory(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
