using System.Text.Json;
using Newsletter.Bounces;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Bounces;

/// <summary>
/// The classifier against 262 real bounces, complaints and auto-replies (../shared/bounces) with the
/// verdicts of Sisimai, a mature bounce classifier.
/// </summary>
public sealed class BounceCorpusTests
{
    private static readonly string Corpus = Path.GetFullPath(Path.Combine(Repository.Root, "..", "shared", "bounces"));

    private sealed record Expected(string Status, string Reason, bool Hard, string? Feedback);

    private static Dictionary<string, List<Expected>> ExpectedVerdicts()
    {
        var path = Path.Combine(Corpus, "expected.json");
        Assert.True(File.Exists(path), $"the bounce corpus is missing: {path}");
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.EnumerateObject().ToDictionary(f => f.Name, f => f.Value.EnumerateArray().Select(v => new Expected(
            v.GetProperty("status").GetString() ?? "", v.GetProperty("reason").GetString()!, v.GetProperty("hard").GetBoolean(),
            v.GetProperty("feedback").GetString())).ToList());
    }

    private static async Task<BounceReport> ParseAsync(string file)
    {
        await using var stream = File.OpenRead(Path.Combine(Corpus, "mail", file));
        return BounceParser.Parse(await BounceParser.LoadAsync(stream));
    }

    [Fact]
    public async Task Dead_addresses_are_told_from_everything_else_as_Sisimai_tells_them()
    {
        var expected = ExpectedVerdicts();
        Assert.Equal(262, expected.Count);
        int agree = 0, total = 0, hardCalledHard = 0, hard = 0, messagesAgreeing = 0, recipientCounts = 0;
        var disagreements = new List<string>();
        foreach (var (file, verdicts) in expected)
        {
            var ours = (await ParseAsync(file)).Recipients;
            Assert.NotEmpty(ours);
            if (ours.Count == verdicts.Count) recipientCounts++;
            var before = agree;
            for (var i = 0; i < verdicts.Count; i++)
            {
                var mine = ours[Math.Min(i, ours.Count - 1)];
                total++;
                if (verdicts[i].Hard) hard++;
                if ((mine.Kind == BounceKind.Hard) == verdicts[i].Hard)
                {
                    agree++;
                    if (verdicts[i].Hard) hardCalledHard++;
                }
                else disagreements.Add($"{file}: Sisimai {verdicts[i].Reason} {verdicts[i].Status}, ours {BounceKinds.Name(mine.Kind)} {mine.Reason} {mine.Status}");
            }
            if (agree - before == verdicts.Count) messagesAgreeing++;
        }
        var rate = (double)agree / total;
        var messageRate = (double)messagesAgreeing / expected.Count;
        var summary = $"recipients {agree}/{total} = {rate:P1}; messages {messagesAgreeing}/{expected.Count} = {messageRate:P1}; " +
            $"dead addresses called hard {hardCalledHard}/{hard}; recipient count as Sisimai's in {recipientCounts}/{expected.Count}";
        File.WriteAllText(Path.Combine(AppContext.BaseDirectory, "bounce-agreement.txt"), summary + "\n" + string.Join("\n", disagreements));
        Assert.True(rate >= 0.97 && messageRate >= 0.97, $"{summary}:\n{string.Join("\n", disagreements)}");
    }

    [Fact]
    public async Task Every_complaint_is_a_complaint_and_a_DMARC_report_is_not()
    {
        foreach (var (file, verdicts) in ExpectedVerdicts().Where(e => e.Value.Any(v => v.Reason == "feedback")))
        {
            var ours = (await ParseAsync(file)).Recipients;
            var complaint = verdicts[0].Feedback != "auth-failure";
            Assert.All(ours, v => Assert.True((v.Kind == BounceKind.Complaint) == complaint, $"{file}: {v}"));
            if (complaint) Assert.All(ours, v => Assert.Contains("@", v.Recipient));
        }
    }

    [Fact]
    public async Task Auto_replies_are_never_bounces_and_bounces_never_auto_replies()
    {
        foreach (var (file, verdicts) in ExpectedVerdicts())
        {
            var ours = (await ParseAsync(file)).Recipients;
            if (verdicts.All(v => v.Reason == "vacation"))
                Assert.All(ours, v => Assert.Equal(BounceKind.AutoReply, v.Kind));
            else
                Assert.DoesNotContain(ours, v => v.Kind == BounceKind.AutoReply);
        }
        var delivered = (await ParseAsync("lhost-amazonses-12.eml")).Recipients;
        Assert.All(delivered, v => Assert.Equal(BounceKind.NotABounce, v.Kind));
    }

    [Theory]
    [InlineData("lhost-postfix-01.eml", BounceKind.Soft, "mailererror")] // a local delivery program failed
    [InlineData("lhost-qmail-04.eml", BounceKind.Block, "blocked")] // "my name was rejected": the sender, not the reader
    [InlineData("lhost-sendmail-01.eml", BounceKind.Hard, "userunknown")] // a pipelined RCPT reply after DATA
    [InlineData("lhost-sendmail-19.eml", BounceKind.Soft, "filtered")] // refused at DATA: the address passed RCPT
    [InlineData("lhost-notes-02.eml", BounceKind.Hard, "userunknown")] // Japanese, ISO-2022-JP
    [InlineData("lhost-x5-01.eml", BounceKind.Hard, "userunknown")] // a report forwarded inside another message
    [InlineData("rfc3464-06.eml", BounceKind.Hard, "userunknown")] // a multipart without boundaries
    [InlineData("lhost-exim-51.eml", BounceKind.Block, "rejected")] // refused after MAIL FROM: about the sender's domain
    [InlineData("lhost-amazonses-01.eml", BounceKind.Block, "blocked")] // "unknown address ... 5.7.1 Access denied"
    [InlineData("lhost-postfix-30.eml", BounceKind.Hard, "userunknown")] // "Recipient address rejected: Access denied" at RCPT, 5.4.1
    [InlineData("lhost-surfcontrol-01.eml", BounceKind.Soft, "filtered")] // a filter's bare "No such user", no stage, no x.1.x
    [InlineData("lhost-exchange2003-01.eml", BounceKind.Hard, "userunknown")] // Exchange's own directory: "recipient name is not recognized"
    public async Task Hard_cases_read_the_receivers_words(string file, BounceKind kind, string reason)
    {
        var verdict = (await ParseAsync(file)).Recipients[0];
        Assert.Equal((kind, reason), (verdict.Kind, verdict.Reason));
    }

    [Fact]
    public async Task Inspect_prints_one_json_object_per_recipient_without_a_database()
    {
        var files = new[] { "arf-01.eml", "lhost-postfix-02.eml", "rfc3834-02.eml" }.Select(f => Path.Combine(Corpus, "mail", f)).ToArray();
        var result = await NewsletterProcess.RunAsync(NewsletterProcess.TempDirectory(), new Dictionary<string, string?>(), ["bounce", "inspect", .. files]);
        Assert.True(result.ExitCode == 0, result.Error);
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(4, lines.Count);
        Assert.All(lines, l => Assert.Equal(["file", "recipient", "status", "kind", "reason"], l.EnumerateObject().Select(p => p.Name)));
        Assert.Equal(["complaint", "hard", "hard", "auto-reply"], lines.Select(l => l.GetProperty("kind").GetString()));
        Assert.Equal("5.1.1", lines[2].GetProperty("status").GetString());

        var missing = await NewsletterProcess.RunAsync(NewsletterProcess.TempDirectory(), new Dictionary<string, string?>(), "bounce", "inspect", "/nonexistent.eml");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("/nonexistent.eml", missing.Error);
    }
}
