using MimeKit;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Cli;

public sealed class DemoTests
{
    [Fact]
    public async Task Demo_with_nothing_configured_starts_its_own_database_and_writes_a_digest_per_sample_subscriber()
    {
        var dir = NewsletterProcess.TempDirectory();
        var nothing = new Dictionary<string, string?>();

        var first = await NewsletterProcess.RunAsync(dir, nothing, "demo");

        Assert.True(first.ExitCode == 0, first.Error);
        var outbox = Path.Combine(dir, "outbox");
        Assert.Contains(outbox, first.Output);
        var files = Directory.GetFiles(outbox, "*.eml");
        Assert.Equal(4, files.Length);
        var messages = files.Select(f => MimeMessage.Load(f)).ToList();
        Assert.Equal(
            ["alex.morgan@example.com", "jisoo.park@example.com", "minji.kim@example.com", "sam.lee@example.com"],
            messages.Select(m => m.To.Mailboxes.Single().Address).Order());
        Assert.All(messages, m =>
        {
            Assert.NotNull(m.HtmlBody);
            Assert.NotNull(m.TextBody);
            Assert.Contains("Phi-3", m.HtmlBody);
        });
        Assert.True(File.Exists(Path.Combine(dir, ".newsletter", "postgres", "PG_VERSION")));

        // A second start reuses the cluster and its data: no duplicate subscribers, and the ledger
        // knows everyone has the issue, so nothing is sent twice.
        var second = await NewsletterProcess.RunAsync(dir, nothing, "demo");
        Assert.True(second.ExitCode == 0, second.Error);
        Assert.Contains("No new messages", second.Output);
        Assert.Equal(4, Directory.GetFiles(outbox, "*.eml").Length);
        var list = await NewsletterProcess.RunAsync(dir, nothing, "subscriber", "list");
        Assert.Equal(4, list.Output.Split('\n').Count(l => l.Contains("@example.com", StringComparison.Ordinal)));
        var issues = await NewsletterProcess.RunAsync(dir, nothing, "issue", "list");
        Assert.Single(issues.Output.Split('\n'), l => l.StartsWith("top-ml-papers-2024-04-22", StringComparison.Ordinal));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Demo_in_a_private_home_folder_works_and_keeps_its_cluster_where_the_server_user_can_reach_it()
    {
        // Like /root/newsletter: the folder itself is open, a parent is private to its owner.
        var home = Path.Combine(NewsletterProcess.TempDirectory(), "home");
        var dir = Path.Combine(home, "newsletter");
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var nothing = new Dictionary<string, string?>();
        var location = Path.Combine(dir, ".newsletter", "postgres.location");
        try
        {
            var first = await NewsletterProcess.RunAsync(dir, nothing, "demo");

            Assert.True(first.ExitCode == 0, first.Error);
            Assert.Equal(4, Directory.GetFiles(Path.Combine(dir, "outbox"), "*.eml").Length);
            if (Environment.UserName == "root")
            {
                // PostgreSQL runs as 'postgres', who cannot get into the private folder: the
                // cluster lives in a folder of its own, recorded in the data folder.
                var cluster = File.ReadAllText(location).Trim();
                Assert.StartsWith(Newsletter.Storage.PostgresServer.OutsideRoot + "/", cluster);
                Assert.True(File.Exists(Path.Combine(cluster, "PG_VERSION")));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(cluster)!));
            }
            var second = await NewsletterProcess.RunAsync(dir, nothing, "demo");
            Assert.True(second.ExitCode == 0, second.Error);
            Assert.Contains("No new messages", second.Output);
        }
        finally
        {
            if (File.Exists(location)) Directory.Delete(Path.GetDirectoryName(File.ReadAllText(location).Trim())!, recursive: true);
        }
    }

    [Fact]
    public async Task Without_server_binaries_or_a_connection_string_start_up_fails_with_the_three_fixes()
    {
        var dir = NewsletterProcess.TempDirectory();

        var result = await NewsletterProcess.RunAsync(dir, new Dictionary<string, string?> { ["Newsletter__PostgresBinDirectory"] = "/nonexistent" }, "migrate");

        Assert.NotEqual(0, result.ExitCode);
        var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("apt-get install postgresql", line);
        Assert.Contains("docker compose up -d", line);
        Assert.Contains("ConnectionStrings__Newsletter", line);
    }

    [Fact]
    public async Task Processes_sharing_the_private_cluster_all_succeed_and_the_last_one_out_stops_it()
    {
        var dir = NewsletterProcess.TempDirectory();
        var nothing = new Dictionary<string, string?>();

        var runs = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => NewsletterProcess.RunAsync(dir, nothing, "subscriber", "add", $"reader{i}@example.org")));
        var list = await NewsletterProcess.RunAsync(dir, nothing, "subscriber", "list");

        Assert.All(runs, r => Assert.True(r.ExitCode == 0, r.Error));
        Assert.Equal(8, list.Output.Split('\n').Count(l => l.Contains("@example.org", StringComparison.Ordinal)));
        Assert.False(File.Exists(Path.Combine(dir, ".newsletter", "postgres", "postmaster.pid")), "the cluster is still running");
    }
}
