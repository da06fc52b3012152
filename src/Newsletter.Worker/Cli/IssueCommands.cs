using System.CommandLine;
using Newsletter.Issues;

namespace Newsletter.Worker.Cli;

internal static class IssueCommands
{
    public static Command Create()
    {
        var issue = new Command("issue", "Import, publish and list issues");

        var file = new Argument<string>("FILE") { Description = "Issue JSON file (see the README for the format)" };
        var publish = new Option<bool>("--publish") { Description = "Publish the issue right after importing it" };
        var import = new Command("import", "Import an issue from a JSON file (all or nothing); a draft with the same slug is replaced") { file, publish };
        import.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            // Parse and validate before touching the database.
            var document = await IssueDocument.ParseFileAsync(parse.GetValue(file)!, token);
            var stored = await app.Get<IssueStore>().ImportAsync(document, parse.GetValue(publish), token);
            Console.WriteLine($"Imported {stored.Slug} ({stored.Items.Count} items, {Status(stored)}).");
            return 0;
        }, ct));
        issue.Add(import);

        var slug = new Argument<string>("SLUG") { Description = "The issue's slug" };
        var publishCommand = new Command("publish", "Publish a draft issue") { slug };
        publishCommand.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var name = parse.GetValue(slug)!;
            var changed = await app.Get<IssueStore>().PublishAsync(name, token);
            Console.WriteLine(changed ? $"Published {name}." : $"{name} was already published.");
            return 0;
        }, ct));
        issue.Add(publishCommand);

        var list = new Command("list", "List issues, newest first");
        list.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var issues = await app.Get<IssueStore>().ListAsync(ct: token);
            Console.WriteLine($"{"SLUG",-36} {"STATUS",-10} {"PUBLISHED",-17} {"ITEMS",5}  TITLE");
            foreach (var i in issues)
                Console.WriteLine($"{i.Slug,-36} {Status(i),-10} {i.PublishedAt?.ToString("yyyy-MM-dd HH:mm") ?? "-",-17} {i.Items.Count,5}  {i.Title.Ko ?? i.Title.En}");
            return 0;
        }, ct));
        issue.Add(list);
        return issue;
    }

    private static string Status(Issue issue) => issue.Status == IssueStatus.Published ? "published" : "draft";
}
