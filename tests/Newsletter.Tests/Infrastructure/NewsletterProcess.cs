using System.Diagnostics;

namespace Newsletter.Tests.Infrastructure;

/// <summary>Runs the real <c>newsletter</c> executable as a child process, as an operator would.</summary>
public static class NewsletterProcess
{
    public sealed record Result(int ExitCode, string Output, string Error);

    public static string Executable => Path.Combine(AppContext.BaseDirectory, "newsletter.dll");

    /// <param name="environment">Configuration as environment variables (<c>Newsletter__...</c>); nothing else leaks in from the test process.</param>
    public static async Task<Result> RunAsync(string workingDirectory, IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Executable);
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("Newsletter__", StringComparison.OrdinalIgnoreCase) || k.StartsWith("ConnectionStrings__", StringComparison.OrdinalIgnoreCase) || k.StartsWith("ASPNETCORE_", StringComparison.Ordinal)).ToList())
            start.Environment.Remove(key);
        foreach (var (key, value) in environment) start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"newsletter {string.Join(' ', args)} did not finish in 2 minutes: {await error}");
        }
        return new Result(process.ExitCode, await output, await error);
    }

    /// <summary>Runs against an existing database with a pickup folder in <paramref name="workingDirectory"/>.</summary>
    public static Task<Result> RunAsync(TestDatabase db, string workingDirectory, params string[] args) =>
        RunAsync(workingDirectory, new Dictionary<string, string?>
        {
            ["ConnectionStrings__Newsletter"] = db.ConnectionString,
            ["Newsletter__Secret"] = "test-secret-test-secret-test-secret-0123456789",
        }, args);

    private static readonly System.Collections.Concurrent.ConcurrentBag<string> Created = CreateBag();

    /// <summary>
    /// A new empty folder, removed when the test run ends; the test host is often ended without
    /// its exit handlers, so the next run also removes the folders of runs whose process is gone.
    /// </summary>
    public static string TempDirectory()
    {
        var path = Path.Combine(Path.GetTempPath(), $"newsletter-test-{Environment.ProcessId}-{Guid.NewGuid().ToString("n")[..12]}");
        Directory.CreateDirectory(path);
        Created.Add(path);
        return path;
    }

    private static System.Collections.Concurrent.ConcurrentBag<string> CreateBag()
    {
        foreach (var stale in Directory.EnumerateDirectories(Path.GetTempPath(), "newsletter-test-*"))
        {
            var parts = Path.GetFileName(stale).Split('-');
            var gone = parts.Length == 4 && int.TryParse(parts[2], System.Globalization.CultureInfo.InvariantCulture, out var pid)
                ? !Directory.Exists($"/proc/{pid}")
                : Directory.GetLastWriteTimeUtc(stale) < DateTime.UtcNow.AddHours(-1); // an older naming, without the process
            if (gone)
                try { Directory.Delete(stale, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        var bag = new System.Collections.Concurrent.ConcurrentBag<string>();
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var dir in bag)
                try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
        return bag;
    }
}
