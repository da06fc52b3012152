using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;
using Newsletter.Tracking;

namespace Newsletter.Tests.Tracking;

/// <summary>
/// Tracked links and the click filter against a real PostgreSQL and a real SMTP server, with an
/// injected clock: what the digest carries, where each link leads, and what is counted.
/// </summary>
public sealed partial class ClickTrackingTests : DatabaseAndSmtpTest
{
    private static readonly DateTimeOffset SentAt = new(2026, 12, 7, 0, 0, 0, TimeSpan.Zero);
    private const string Browser = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    private const string SafeLinks = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0";
    private const string PrivacyProxy = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";

    private IServiceProvider Services(FixedClock clock, string mode = "aggregate") =>
        _db.Services(clock, new SmtpTransport(new SmtpOptions { Host = "127.0.0.1", Port = _smtp.Port, Security = SmtpSecurity.None }),
            tracking: new TrackingOptions { Clicks = mode });

    /// <summary>Imports the sample issue, adds the readers (English, weekly), sends the weekly digest at <see cref="SentAt"/> and returns each reader's message.</summary>
    private async Task<(Issue Issue, Dictionary<string, MimeMessage> Mail)> SendAsync(IServiceProvider services, FixedClock clock, params string[] readers)
    {
        clock.Set(SentAt.AddHours(-1));
        var issue = await services.GetRequiredService<IssueStore>().ImportAsync(SampleIssue.Document, publish: true);
        foreach (var email in readers)
            await services.GetRequiredService<SubscriberStore>().AddActiveAsync(new NewSubscriber(email, null, Cadence.Weekly, Language.En));
        clock.Set(SentAt);
        await services.GetRequiredService<SendLedger>().StartDigestAsync(Cadence.Weekly, null);
        await using (var engine = services.GetRequiredService<DeliveryEngine>())
            while (await engine.DeliverBatchAsync() > 0) { }
        var mail = new Dictionary<string, MimeMessage>();
        while (_smtp.Messages.TryDequeue(out var m)) mail[m.Recipients[0]] = m.Message;
        Assert.Equal(readers.Length, mail.Count);
        return (issue, mail);
    }

    private static List<string> HtmlLinks(MimeMessage m) => Href().Matches(m.HtmlBody!).Select(x => System.Net.WebUtility.HtmlDecode(x.Groups[1].Value)).ToList();

    private static List<string> TextLinks(MimeMessage m) => Url().Matches(m.TextBody!).Select(x => x.Value).ToList();

    private static string TokenOf(string url) => url[(TestMail.PublicUrl + "/r/").Length..];

    [Fact]
    public async Task Every_paper_link_goes_through_a_signed_redirect_to_exactly_its_own_target_and_nothing_else_is_tracked()
    {
        var clock = new FixedClock(SentAt);
        var services = Services(clock);
        var (issue, mail) = await SendAsync(services, clock, "reader@example.org");
        var message = mail["reader@example.org"];
        var expected = issue.Items.SelectMany(i => i.Links.Select(l => l.Url)).ToList();
        var tokens = services.GetRequiredService<ClickTokens>();
        var targets = services.GetRequiredService<TrackedLinkTargets>();

        foreach (var links in new[] { HtmlLinks(message), TextLinks(message) })
        {
            var tracked = links.Where(l => l.StartsWith(TestMail.PublicUrl + "/r/", StringComparison.Ordinal)).ToList();
            var resolved = new List<string>();
            foreach (var url in tracked)
            {
                Assert.True(tokens.TryRead(TokenOf(url), out var place), url);
                Assert.Equal(issue.Id, place.IssueId);
                Assert.Equal(SentAt, place.SentAt);
                Assert.Equal(Language.En, place.Language);
                Assert.Equal(ClickCadence.Weekly, place.Cadence);
                resolved.Add((await targets.FindAsync(place, default))!);
            }
            // Exactly the issue's own links, in order, each once.
            Assert.Equal(expected, resolved);
            // Unsubscribe, preferences and view-in-browser are never tracked, and no paper link is left untracked.
            var untracked = links.Except(tracked).ToList();
            Assert.Contains(untracked, l => l.StartsWith(TestMail.PublicUrl + "/unsubscribe/", StringComparison.Ordinal));
            Assert.Contains(untracked, l => l.StartsWith(TestMail.PublicUrl + "/preferences/", StringComparison.Ordinal));
            Assert.Contains(untracked, l => l == $"{TestMail.PublicUrl}/issues/{issue.Slug}");
            Assert.DoesNotContain(untracked, expected.Contains);
        }
        Assert.Contains(DigestStrings.English.ClicksCounted, message.HtmlBody);
        Assert.Contains(DigestStrings.English.ClicksCounted, message.TextBody);
        var unsubscribe = message.Headers[HeaderId.ListUnsubscribe];
        Assert.DoesNotContain("/r/", unsubscribe);
    }

    [Fact]
    public async Task Tokens_that_were_forged_truncated_edited_or_made_for_another_purpose_name_nothing()
    {
        var clock = new FixedClock(SentAt);
        var services = Services(clock);
        var (_, mail) = await SendAsync(services, clock, "reader@example.org");
        var tokens = services.GetRequiredService<ClickTokens>();
        var token = TokenOf(HtmlLinks(mail["reader@example.org"]).First(l => l.Contains("/r/", StringComparison.Ordinal)));
        Assert.True(tokens.TryRead(token, out _));

        var edited = Enumerable.Range(0, token.Length).Select(i =>
        {
            var chars = token.ToCharArray();
            chars[i] = chars[i] == 'A' ? 'B' : 'A';
            return new string(chars);
        });
        foreach (var bad in edited)
            Assert.False(tokens.TryRead(bad, out _), bad);
        Assert.False(tokens.TryRead(token.AsSpan(0, token.Length - 1), out _));
        Assert.False(tokens.TryRead(token + "A", out _));
        Assert.False(tokens.TryRead("", out _));
        // Another secret's token, and the same reader's unsubscribe token.
        Assert.False(new ClickTokens("another-secret-another-secret-0123456789").TryRead(token, out _));
        var unsubscribe = HtmlLinks(mail["reader@example.org"]).First(l => l.Contains("/unsubscribe/", StringComparison.Ordinal));
        Assert.False(tokens.TryRead(unsubscribe.AsSpan(unsubscribe.LastIndexOf('/') + 1), out _));
    }

    [Fact]
    public async Task Off_and_a_readers_own_opt_out_leave_the_links_as_they_are()
    {
        var clock = new FixedClock(SentAt);
        var off = Services(clock, "off");
        var (issue, mail) = await SendAsync(off, clock, "reader@example.org", "optout@example.org");
        var expected = issue.Items.SelectMany(i => i.Links.Select(l => l.Url)).ToList();
        Assert.All(mail.Values, m =>
        {
            Assert.DoesNotContain(HtmlLinks(m).Concat(TextLinks(m)), l => l.Contains("/r/", StringComparison.Ordinal));
            Assert.Equal(expected, HtmlLinks(m).Where(expected.Contains).ToList());
            Assert.DoesNotContain(DigestStrings.English.ClicksCounted, m.HtmlBody);
        });

        // Tracking on, but one reader turned it off on their preferences page.
        var on = Services(clock);
        var optout = await on.GetRequiredService<SubscriberStore>().FindByEmailAsync("optout@example.org");
        await on.GetRequiredService<Subscriptions>().UpdatePreferencesAsync(optout!.PublicId, null, null, null, ChangeSource.Preferences, ClientInfo.None, clickTracking: false);
        clock.Set(SentAt.AddHours(12));
        await on.GetRequiredService<IssueStore>().ImportAsync(IssueDocument.Parse("""
            {"slug": "second", "title": {"en": "Second"}, "items": [{"title": {"en": "P"}, "summary": {"en": "S"}, "links": [{"label": "paper", "url": "https://example.org/p"}]}]}
            """), publish: true);
        clock.Set(SentAt.AddDays(1));
        var (secondRun, _) = await on.GetRequiredService<SendLedger>().StartDigestAsync(Cadence.Weekly, null);
        Assert.Equal(2, secondRun.Total);
        await using (var engine = on.GetRequiredService<DeliveryEngine>())
            while (await engine.DeliverBatchAsync() > 0) { }
        var second = new Dictionary<string, MimeMessage>();
        while (_smtp.Messages.TryDequeue(out var m)) second[m.Recipients[0]] = m.Message;
        Assert.Contains(HtmlLinks(second["reader@example.org"]), l => l.StartsWith(TestMail.PublicUrl + "/r/", StringComparison.Ordinal));
        Assert.DoesNotContain(HtmlLinks(second["optout@example.org"]), l => l.Contains("/r/", StringComparison.Ordinal));
        Assert.Contains("https://example.org/p", HtmlLinks(second["optout@example.org"]));
        Assert.DoesNotContain(DigestStrings.English.ClicksCounted, second["optout@example.org"].HtmlBody);
        var history = await on.GetRequiredService<Subscriptions>().HistoryAsync("optout@example.org");
        Assert.Contains(history!, e => e.Event == "click_tracking_changed" && e.Detail == "off");
    }

    private sealed record Visit(string Reader, int Paper, DateTimeOffset At, string Method, string Agent);

    /// <summary>Requests as the redirect endpoint records them: the place from the reader's own token, the filter's first verdict.</summary>
    private static List<ClickRequest> Requests(ClickTokens tokens, Dictionary<string, List<string>> links, IEnumerable<(string Reader, int Link, DateTimeOffset At, string Method, string Agent)> visits) =>
        visits.Select(v =>
        {
            Assert.True(tokens.TryRead(TokenOf(links[v.Reader][v.Link]), out var place));
            return new ClickRequest(place, v.At, v.Method, v.Agent, ClickFilter.Immediate(v.Method, v.Agent, place.SentAt, v.At));
        }).ToList();

    [Theory]
    [InlineData("aggregate")]
    [InlineData("per-subscriber")]
    public async Task Only_the_human_is_counted_not_safe_links_nor_a_privacy_proxy(string mode)
    {
        var clock = new FixedClock(SentAt);
        var services = Services(clock, mode);
        var (issue, mail) = await SendAsync(services, clock, "scanned@example.org", "human@example.org", "proxied@example.org");
        var tokens = services.GetRequiredService<ClickTokens>();
        var recorder = services.GetRequiredService<ClickRecorder>();
        var links = mail.ToDictionary(m => m.Key, m => HtmlLinks(m.Value).Where(l => l.Contains("/r/", StringComparison.Ordinal)).ToList());
        var count = links["human@example.org"].Count;

        // Safe Links, 40 s after delivery: HEAD, then GET, of every link within a second.
        var scan = SentAt.AddSeconds(40);
        var visits = Enumerable.Range(0, count).SelectMany(i => new[]
        {
            ("scanned@example.org", i, scan.AddMilliseconds(i * 20), "HEAD", SafeLinks),
            ("scanned@example.org", i, scan.AddMilliseconds(500 + i * 20), "GET", SafeLinks),
        }).ToList();
        // A privacy proxy fetching each link as it renders the message, a few seconds apart.
        visits.AddRange(Enumerable.Range(0, count).Select(i => ("proxied@example.org", i, SentAt.AddMinutes(2).AddSeconds(3 * i), "GET", PrivacyProxy)));
        // The reader: the first paper's link after five minutes, the second paper's four minutes later,
        // and the first again after twenty (still one reader of that link).
        visits.Add(("human@example.org", 0, SentAt.AddMinutes(5), "GET", Browser));
        visits.Add(("human@example.org", issue.Items[0].Links.Count, SentAt.AddMinutes(9), "GET", Browser));
        visits.Add(("human@example.org", 0, SentAt.AddMinutes(20), "GET", Browser));
        await recorder.WriteAsync(Requests(tokens, links, visits));

        clock.Set(SentAt.AddMinutes(21));
        Assert.Equal(visits.Count, await recorder.SettleAsync());
        Assert.Equal(0, await recorder.SettleAsync()); // counted once

        var report = (await services.GetRequiredService<ClickReports>().GetAsync(issue.Slug))!;
        Assert.Equal(3, report.Delivered);
        Assert.Equal(1, report.Clickers);
        Assert.Equal(1.0 / 3, report.Rate, 6);
        Assert.Equal(1, report.ByLanguage.Single(g => g.Name == "en").Clickers);
        Assert.Equal(1, report.ByCadence.Single(g => g.Name == "weekly").Clickers);
        Assert.Equal(0, report.ByCadence.Single(g => g.Name == "daily").Clickers);
        Assert.Equal([1L, 1L], report.Papers.Take(2).Select(p => p.Clickers));
        Assert.All(report.Papers.Skip(2), p => Assert.Equal(0, p.Clickers));
        Assert.Equal(1, report.Papers[0].Links[0].Clickers);
        Assert.Equal(1, report.Papers[0].ByLanguage["en"]);
        Assert.Equal(3, report.Filtered.Human);
        Assert.Equal(visits.Count, report.Filtered.Requests);
        Assert.Equal(count, report.Filtered.Removed["head"]);
        Assert.Equal(count, report.Filtered.Removed["burst"]);
        Assert.Equal(count, report.Filtered.Removed["agent"]);

        if (mode == "aggregate")
        {
            // No row names a reader or a delivery.
            Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from clicks"));
            Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from click_requests where delivery_id is not null"));
            Assert.Null(report.Readers);
        }
        else
        {
            var readers = report.Readers!;
            Assert.Equal(["human@example.org", "human@example.org"], readers.Select(r => r.Email));
            Assert.Equal([1, 2], readers.Select(r => r.Paper));
            Assert.Equal(2L, await _db.ScalarAsync<long>("select count(*) from clicks"));
        }

        // After the audit period only the counts are left.
        clock.Set(SentAt.AddDays(3));
        Assert.Equal(visits.Count, await recorder.PruneAsync());
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from click_requests"));
        Assert.Equal(1, (await services.GetRequiredService<ClickReports>().GetAsync(issue.Slug))!.Clickers);
    }

    [Fact]
    public async Task Requests_within_seconds_of_delivery_are_a_gateway_not_a_reader()
    {
        var clock = new FixedClock(SentAt);
        var services = Services(clock);
        var (issue, mail) = await SendAsync(services, clock, "reader@example.org");
        var tokens = services.GetRequiredService<ClickTokens>();
        var recorder = services.GetRequiredService<ClickRecorder>();
        var links = mail.ToDictionary(m => m.Key, m => HtmlLinks(m.Value).Where(l => l.Contains("/r/", StringComparison.Ordinal)).ToList());
        await recorder.WriteAsync(Requests(tokens, links, [("reader@example.org", 0, SentAt.AddSeconds(3), "GET", Browser)]));
        clock.Set(SentAt.AddMinutes(1));
        await recorder.SettleAsync();
        var report = (await services.GetRequiredService<ClickReports>().GetAsync(issue.Slug))!;
        Assert.Equal(0, report.Clickers);
        Assert.Equal(1, report.Filtered.Removed["too-soon"]);
    }

    [GeneratedRegex("href=\"([^\"]+)\"")]
    private static partial Regex Href();

    [GeneratedRegex(@"https?://[^\s<>""]+")]
    private static partial Regex Url();
}
