using System.CommandLine;
using Newsletter.Issues;

namespace Newsletter.Cli;

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

        var showSlug = new Argument<string>("SLUG") { Description = "The issue's slug" };
        var show = new Command("show", "Show an issue and its items") { showSlug };
        show.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var name = parse.GetValue(showSlug)!;
            var i = await app.Get<IssueStore>().GetAsync(name, token) ?? throw new Newsletter.Validation.NotFoundException("slug", $"no issue is called '{name}'");
            Console.WriteLine($"{i.Slug} ({Status(i)}{(i.PublishedAt is { } at ? $" {at:yyyy-MM-dd HH:mm}" : "")})");
            Console.WriteLine($"  ko: {i.Title.Ko}");
            Console.WriteLine($"  en: {i.Title.En}");
            for (var n = 0; n < i.Items.Count; n++)
                Console.WriteLine($"  {n + 1,2}. {i.Items[n].Title.Ko ?? i.Items[n].Title.En}");
            return 0;
        }, ct));
        issue.Add(show);

        var updateFile = new Argument<string>("FILE") { Description = "Issue JSON file; its slug names the issue" };
        var correction = new Option<bool>("--correction") { Description = "Correct a published issue (its content is replaced and the correction dated)" };
        var update = new Command("update", "Replace a draft (or, with --correction, a published issue) with a JSON file") { updateFile, correction };
        update.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var document = await IssueDocument.ParseFileAsync(parse.GetValue(updateFile)!, token);
            var store = app.Get<IssueStore>();
            if (await store.GetAsync(document.Slug, token) is null)
                throw new Newsletter.Validation.NotFoundException("slug", $"no issue is called '{document.Slug}' (use issue import to add one)");
            var stored = await store.ImportAsync(document, publish: false, token, correction: parse.GetValue(correction));
            Console.WriteLine($"Updated {stored.Slug} ({stored.Items.Count} items, {Status(stored)}).");
            return 0;
        }, ct));
        issue.Add(update);

        var deleteSlug = new Argument<string>("SLUG") { Description = "The draft's slug" };
        var delete = new Command("delete", "Delete a draft (published issues are kept)") { deleteSlug };
        delete.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            await app.Get<IssueStore>().DeleteDraftAsync(parse.GetValue(deleteSlug)!, token);
            Console.WriteLine($"Deleted {parse.GetValue(deleteSlug)}.");
            return 0;
        }, ct));
        issue.Add(delete);
        return issue;
    }

    private static string Status(Issue issue) => issue.Status == IssueStatus.Published ? "published" : "draft";
}
