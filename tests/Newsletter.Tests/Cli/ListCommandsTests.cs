using Newsletter.Issues;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Cli;

/// <summary>The subscriber list and issue verbs of the CLI, as an admin runs them.</summary>
public sealed class ListCommandsTests
{
    [Fact]
    public async Task Subscriber_import_reports_rejected_rows_export_writes_csv_and_erase_suppresses()
    {
        await using var db = await TestDatabase.CreateAsync();
        var dir = NewsletterProcess.TempDirectory();
        await File.WriteAllTextAsync(Path.Combine(dir, "list.csv"), "email,name,cadence,language\nminji@example.org,\"김, 민지\",daily,ko\nnope,,,\ntom@example.org,,,en\n");

        var import = await NewsletterProcess.RunAsync(db, dir, "subscriber", "import", "list.csv");
        Assert.Equal(3, import.ExitCode); // imported, with rejected rows
        Assert.Contains("3 rows: 2 added, 0 updated, 0 unchanged, 1 rejected.", import.Output);
        Assert.Contains("line 3: email: 'nope' is not an email address", import.Output);

        var export = await NewsletterProcess.RunAsync(db, dir, "subscriber", "export", "--status", "active");
        Assert.Equal(0, export.ExitCode);
        var lines = export.Output.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("email,name,cadence,language,status,created_at,time_zone,hour,weekday", lines[0]);
        Assert.StartsWith("minji@example.org,\"김, 민지\",daily,ko,active,", lines[1]);
        Assert.Equal(3, lines.Length);

        Assert.Equal(0, (await NewsletterProcess.RunAsync(db, dir, "subscriber", "erase", "minji@example.org")).ExitCode);
        var again = await NewsletterProcess.RunAsync(db, dir, "subscriber", "import", "list.csv");
        Assert.Contains("line 2: email: the address was erased and is suppressed", again.Output);

        await File.WriteAllTextAsync(Path.Combine(dir, "broken.csv"), "mail\nx@example.org\n");
        var broken = await NewsletterProcess.RunAsync(db, dir, "subscriber", "import", "broken.csv");
        Assert.Equal(2, broken.ExitCode);
        Assert.Equal("newsletter: csv: line 1: unknown column 'mail'; the columns are email,name,cadence,language,time_zone,hour,weekday", broken.Error.Trim());
        Assert.Equal(1L, await db.ScalarAsync<long>("select count(*) from subscribers"));
    }

    [Fact]
    public async Task Issue_show_update_and_delete_keep_published_issues_intact()
    {
        await using var db = await TestDatabase.CreateAsync();
        var dir = NewsletterProcess.TempDirectory();
        var sample = await File.ReadAllTextAsync(Repository.PathOf("db/samples/top-ml-papers-2024-04-22.json"));
        var slug = SampleIssue.Document.Slug;
        await File.WriteAllTextAsync(Path.Combine(dir, "issue.json"), sample);
        await File.WriteAllTextAsync(Path.Combine(dir, "edited.json"), sample.Replace(SampleIssue.Document.Title.En!, "Edited", StringComparison.Ordinal));

        Assert.Equal(0, (await NewsletterProcess.RunAsync(db, dir, "issue", "import", "issue.json")).ExitCode);
        Assert.Equal(0, (await NewsletterProcess.RunAsync(db, dir, "issue", "update", "edited.json")).ExitCode);
        var show = await NewsletterProcess.RunAsync(db, dir, "issue", "show", slug);
        Assert.Contains("en: Edited", show.Output);
        Assert.Contains($"{slug} (draft)", show.Output);

        Assert.Equal(0, (await NewsletterProcess.RunAsync(db, dir, "issue", "publish", slug)).ExitCode);
        var immutable = await NewsletterProcess.RunAsync(db, dir, "issue", "update", "issue.json");
        Assert.NotEqual(0, immutable.ExitCode);
        Assert.Contains("already published", immutable.Error);
        var delete = await NewsletterProcess.RunAsync(db, dir, "issue", "delete", slug);
        Assert.NotEqual(0, delete.ExitCode);
        Assert.Contains("published and cannot be deleted", delete.Error);
        Assert.Equal(0, (await NewsletterProcess.RunAsync(db, dir, "issue", "update", "issue.json", "--correction")).ExitCode);
        Assert.DoesNotContain("Edited", (await NewsletterProcess.RunAsync(db, dir, "issue", "show", slug)).Output);
        Assert.True(await db.ScalarAsync<bool>($"select status = 'published' and corrected_at is not null from issues where slug = '{slug}'"));

        await File.WriteAllTextAsync(Path.Combine(dir, "draft.json"), sample.Replace(slug, "a-draft", StringComparison.Ordinal));
        await NewsletterProcess.RunAsync(db, dir, "issue", "import", "draft.json");
        Assert.Equal(0, (await NewsletterProcess.RunAsync(db, dir, "issue", "delete", "a-draft")).ExitCode);
        Assert.Equal(1L, await db.ScalarAsync<long>("select count(*) from issues"));
    }
}
