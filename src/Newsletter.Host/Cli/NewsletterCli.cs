using System.CommandLine;
using Microsoft.Extensions.Options;
using Newsletter.Storage;
using Newsletter.Validation;

namespace Newsletter.Cli;

/// <summary>The <c>newsletter</c> command line: every verb, its arguments, and one error line on failure.</summary>
internal static class NewsletterCli
{
    public static async Task<int> RunAsync(string[] args)
    {
        var root = new RootCommand("Newsletter: a self-hosted email newsletter with weekly and daily digests.");
        var run = RunCommand.Create();
        root.Add(run);
        root.Add(MigrateCommand.Create());
        root.Add(DemoCommand.Create());
        root.Add(IssueCommands.Create());
        root.Add(SubscriberCommands.Create());
        root.Add(PreviewCommands.Preview());
        root.Add(PreviewCommands.Dkim());
        root.Add(TemplateCommands.Create());
        root.Add(SendCommands.Create());
        root.Add(BounceCommands.Create());
        // `newsletter` alone runs the service.
        root.SetAction((parse, ct) => RunCommand.ExecuteAsync(null, ct));
        // SIGTERM is the host's to handle (finish messages in flight within ShutdownTimeout), not
        // System.CommandLine's, which would end the process after a short grace period.
        return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
    }

    /// <summary>Starts the app without HTTP, runs <paramref name="body"/>, and turns known failures into one line on stderr.</summary>
    public static async Task<int> WithAppAsync(Func<NewsletterApp, CancellationToken, Task<int>> body, CancellationToken ct)
    {
        try
        {
            await using var app = await NewsletterApp.StartAsync(serve: false, urls: null, ct);
            return await body(app, ct);
        }
        catch (Exception e) when (Describe(e) is { } message)
        {
            await Console.Error.WriteLineAsync($"newsletter: {message}");
            return e is InputException or OptionsValidationException ? 2 : 1;
        }
    }

    /// <summary>The one-line message for a failure a person can act on; null for a bug (which keeps its stack trace).</summary>
    public static string? Describe(Exception e) => e switch
    {
        OptionsValidationException o => "configuration error: " + string.Join("; ", o.Failures),
        InvalidOperationException { InnerException: FormatException or InvalidOperationException } c when c.Message.Contains("configuration", StringComparison.OrdinalIgnoreCase)
            => "configuration error: " + c.Message,
        InvalidOperationException c when c.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal)
            => "configuration error: " + c.Message,
        InputException or NotFoundException or ConflictException or StartupException => e.Message,
        OperationCanceledException => "cancelled",
        _ => null,
    };
}
