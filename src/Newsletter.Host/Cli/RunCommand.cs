using System.CommandLine;
using Newsletter.Storage;

namespace Newsletter.Cli;

internal static class RunCommand
{
    public static Command Create()
    {
        var urls = new Option<string?>("--urls") { Description = "Where HTTP listens (default http://localhost:5080, or ASPNETCORE_URLS)" };
        var command = new Command("run", "Run the service: HTTP endpoints, scheduler and delivery workers (the default verb)") { urls };
        command.SetAction((parse, ct) => ExecuteAsync(parse.GetValue(urls), ct));
        return command;
    }

    public static async Task<int> ExecuteAsync(string? urls, CancellationToken ct)
    {
        try
        {
            await using var app = await NewsletterApp.StartAsync(serve: true, urls, ct);
            await app.Web.RunAsync(ct);
            return 0;
        }
        catch (Exception e) when (NewsletterCli.Describe(e) is { } message)
        {
            await Console.Error.WriteLineAsync($"newsletter: {message}");
            return 1;
        }
    }
}

internal static class MigrateCommand
{
    public static Command Create()
    {
        var command = new Command("migrate", "Apply pending database migrations and exit");
        command.SetAction((parse, ct) => NewsletterCli.WithAppAsync((app, _) =>
        {
            // Start-up migrates; this verb reports what it did.
            foreach (var m in app.AppliedMigrations)
                Console.WriteLine($"Applied {m.Name}");
            Console.WriteLine($"Database schema is current (migration {Migration.Embedded[^1].Name}).");
            return Task.FromResult(0);
        }, ct));
        return command;
    }
}
