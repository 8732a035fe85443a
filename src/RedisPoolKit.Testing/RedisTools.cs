namespace RedisPoolKit.Testing;

/// <summary>Finds the Redis binaries a topology needs beside <c>redis-server</c>: <c>redis-cli</c> and <c>redis-sentinel</c>.</summary>
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
