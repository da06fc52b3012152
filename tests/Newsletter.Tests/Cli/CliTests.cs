using Newsletter.Issues;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Cli;

public sealed class CliTests
{
    private static readonly string[] Verbs = ["run", "migrate", "demo", "issue", "subscriber"];

    [Fact]
    public async Task Help_lists_every_verb_with_a_description()
    {
        var result = await NewsletterProcess.RunAsync(NewsletterProcess.TempDirectory(), new Dictionary<string, string?>(), "--help");

        Assert.Equal(0, result.ExitCode);
        foreach (var verb in Verbs)
            Assert.Matches($@"(?m)^\s+{verb}\s+\S.+$", result.Output);
    }

    [Fact]
    public async Task Subscriber_add_then_list_shows_the_subscriber()
    {
        await using var db = await TestDatabase.CreateAsync();
        var dir = NewsletterProcess.TempDirectory();

        var add = await NewsletterProcess.RunAsync(db, dir, "subscriber", "add", "Reader@Example.org", "--name", "김독자", "--cadence", "daily", "--language", "both");
        var list = await NewsletterProcess.RunAsync(db, dir, "subscriber", "list");

        Assert.True(add.ExitCode == 0, add.Error);
        Assert.Contains("Reader@example.org", list.Output);
        Assert.Matches(@"Reader@example\.org\s+active\s+daily\s+both", list.Output);
        Assert.Contains("김독자", list.Output);
    }

    [Theory]
    [InlineData("email", "not-an-address")]
    [InlineData("cadence", "reader@example.org", "--cadence", "monthly")]
    [InlineData("language", "reader@example.org", "--language", "de")]
    [InlineData("name", "reader@example.org", "--name", "bad\u0001name")]
    public async Task Subscriber_add_with_bad_input_exits_non_zero_naming_the_field_and_writes_nothing(string field, params string[] args)
    {
        await using var db = await TestDatabase.CreateAsync();

        var result = await NewsletterProcess.RunAsync(db, NewsletterProcess.TempDirectory(), ["subscriber", "add", .. args]);

        Assert.NotEqual(0, result.ExitCode);
        var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"newsletter: {field}: ", line);
        Assert.Equal(0L, await db.ScalarAsync<long>("select count(*) from subscribers"));
    }

    [Fact]
    public async Task Adding_an_address_twice_exits_non_zero()
    {
        await using var db = await TestDatabase.CreateAsync();
        var dir = NewsletterProcess.TempDirectory();
        await NewsletterProcess.RunAsync(db, dir, "subscriber", "add", "reader@example.org");

        var again = await NewsletterProcess.RunAsync(db, dir, "subscriber", "add", "READER@example.org");

        Assert.NotEqual(0, again.ExitCode);
        Assert.Contains("email: 'READER@example.org' is already on the list", again.Error);
    }

    [Fact]
    public async Task Issue_import_with_publish_then_list_shows_it_published()
    {
        await using var db = await TestDatabase.CreateAsync();
        var dir = NewsletterProcess.TempDirectory();
        var file = Path.Combine(dir, "issue.json");
        await File.WriteAllTextAsync(file, SampleIssue.Json);

        var import = await NewsletterProcess.RunAsync(db, dir, "issue", "import", file, "--publish");
        var list = await NewsletterProcess.RunAsync(db, dir, "issue", "list");

        Assert.True(import.ExitCode == 0, import.Error);
        Assert.Matches(@"top-ml-papers-2024-04-22\s+published\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+10", list.Output);
    }

    [Fact]
    public async Task Issue_import_then_publish_as_separate_steps()
    {
        await using var db = await TestDatabase.CreateAsync();
        var dir = NewsletterProcess.TempDirectory();
        var file = Path.Combine(dir, "issue.json");
        await File.WriteAllTextAsync(file, SampleIssue.Json);

        Assert.Equal(0, (await NewsletterProcess.RunAsync(db, dir, "issue", "import", file)).ExitCode);
        Assert.Equal("draft", await db.ScalarAsync<string>("select status from issues"));
        var publish = await NewsletterProcess.RunAsync(db, dir, "issue", "publish", "top-ml-papers-2024-04-22");

        Assert.Equal(0, publish.ExitCode);
        Assert.Equal("published", await db.ScalarAsync<string>("select status from issues"));
        var unknown = await NewsletterProcess.RunAsync(db, dir, "issue", "publish", "no-such-issue");
        Assert.NotEqual(0, unknown.ExitCode);
        Assert.Contains("slug: no issue is called 'no-such-issue'", unknown.Error);
    }

    [Theory]
    [InlineData("{ not json", "$: is not valid JSON")]
    [InlineData("{\"slug\":\"x\",\"title\":{\"en\":\"T\"},\"items\":[{\"title\":{\"en\":\"A\"},\"summary\":{\"en\":\"B\"},\"links\":[{\"label\":\"paper\",\"url\":\"javascript:alert(1)\"}]}]}", "items[0].links[0].url: must be an absolute http or https URL")]
    [InlineData("{\"slug\":\"x\",\"title\":{\"en\":\"T\"},\"extra\":1,\"items\":[]}", "extra: is not a known field")]
    public async Task Issue_import_of_a_bad_file_exits_non_zero_and_writes_nothing(string json, string expected)
    {
        await using var db = await TestDatabase.CreateAsync();
        var dir = NewsletterProcess.TempDirectory();
        var file = Path.Combine(dir, "bad.json");
        await File.WriteAllTextAsync(file, json);

        var result = await NewsletterProcess.RunAsync(db, dir, "issue", "import", file, "--publish");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(expected, Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.Equal(0L, await db.ScalarAsync<long>("select count(*) from issues"));
        Assert.Equal(0L, await db.ScalarAsync<long>("select count(*) from issue_items"));
    }

    [Fact]
    public async Task Issue_import_of_a_missing_file_names_it()
    {
        await using var db = await TestDatabase.CreateAsync();
        var result = await NewsletterProcess.RunAsync(db, NewsletterProcess.TempDirectory(), "issue", "import", "/no/such/file.json");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("'/no/such/file.json' does not exist", result.Error);
    }
}
