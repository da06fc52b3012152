using System.Text;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;
using Newsletter.Bounces;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;
using Newsletter.Validation;

namespace Newsletter.Tests.Bounces;

/// <summary>
/// Reports coming back for digests the service really sent (real PostgreSQL, a real SMTP server on
/// loopback): tied to their delivery by the VERP return path or the Message-ID, and applied once.
/// </summary>
public sealed class BounceProcessingTests : IAsyncLifetime
{
    private const string BounceDomain = "bounces.example.org";
    private readonly FixedClock _clock = new(new DateTimeOffset(2026, 11, 30, 9, 0, 0, TimeSpan.Zero));
    private TestDatabase _db = null!;
    private TestSmtpServer _smtp = null!;
    private IServiceProvider _services = null!;

    public async Task InitializeAsync()
    {
        _db = await TestDatabase.CreateAsync();
        _smtp = new TestSmtpServer();
        _services = _db.Services(_clock, new SmtpTransport(new SmtpOptions { Host = "127.0.0.1", Port = _smtp.Port, Security = SmtpSecurity.None }),
            bounces: new BounceOptions { Domain = BounceDomain, SoftLimit = 3 });
    }

    public async Task DisposeAsync()
    {
        await _smtp.DisposeAsync();
        await _db.DisposeAsync();
    }

    private BounceProcessor Processor => _services.GetRequiredService<BounceProcessor>();

    /// <summary>Sends the weekly digest (adding the given readers first); returns what each reader got now: envelope sender, Message-ID, delivery id.</summary>
    private async Task<Dictionary<string, (string MailFrom, string MessageId, long DeliveryId)>> SendAsync(params string[] readers)
    {
        if (await _db.ScalarAsync<long>("select count(*) from issues") == 0)
            await _services.GetRequiredService<IssueStore>().ImportAsync(SampleIssue.Document, publish: true);
        foreach (var reader in readers)
            await _services.GetRequiredService<SubscriberStore>().AddActiveAsync(new NewSubscriber(reader, null, Cadence.Weekly, Language.En));
        _smtp.Messages.Clear();
        _clock.Advance(TimeSpan.FromDays(7));
        await _services.GetRequiredService<SendLedger>().StartDigestAsync(Cadence.Weekly, null);
        await using (var engine = _services.GetRequiredService<DeliveryEngine>()) await engine.DeliverBatchAsync();
        await using var connection = await _db.DataSource.OpenConnectionAsync();
        var latest = (await connection.QueryAsync<(long Id, string Email)>(
            "select distinct on (s.email) d.id, s.email from deliveries d join subscribers s on s.id = d.subscriber_id order by s.email, d.id desc"))
            .ToDictionary(r => r.Email, r => r.Id);
        return _smtp.Messages.ToDictionary(m => m.Recipients[0], m => (m.MailFrom, m.Message.MessageId!, latest[m.Recipients[0]]));
    }

    private async Task<string> StatusOf(string email) => (await _db.ScalarAsync<string>($"select status from subscribers where email = '{email}'"))!;

    [Fact]
    public async Task A_hard_bounce_to_the_return_path_bounces_the_subscriber_once_and_says_so_on_the_delivery()
    {
        var sent = await SendAsync("gone@example.net", "here@example.net");
        var gone = sent["gone@example.net"];
        Assert.Matches(@"^bounces\+\d+-[a-z2-7]{13}@bounces\.example\.org$", gone.MailFrom);
        var keys = _services.GetRequiredService<DeliveryKeys>();
        Assert.True(keys.TryReadReturnPath(gone.MailFrom, BounceDomain, out var byEnvelope));
        Assert.True(keys.TryReadMessageId(gone.MessageId, out var byMessageId));
        Assert.Equal(gone.DeliveryId, byEnvelope);
        Assert.Equal(gone.DeliveryId, byMessageId);
        Assert.NotEqual(gone.MailFrom, sent["here@example.net"].MailFrom);

        var dsn = TestReports.Dsn(gone.MailFrom, "gone@example.net", "5.1.1", "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown in virtual mailbox table");
        var result = await Processor.ProcessAsync(dsn, [gone.MailFrom], BounceSource.Smtp);
        Assert.Equal((BounceOutcome.Applied, BounceKind.Hard), (result.Outcome, result.Verdict!.Kind));
        Assert.Equal("bounced", await StatusOf("gone@example.net"));
        Assert.Equal("active", await StatusOf("here@example.net"));
        Assert.StartsWith("bounced after delivery: 5.1.1 userunknown", await _db.ScalarAsync<string>($"select last_error from deliveries where id = {gone.DeliveryId}"));
        Assert.Equal("sent", await _db.ScalarAsync<string>($"select status from deliveries where id = {gone.DeliveryId}"));
        Assert.Equal("bounce", await _db.ScalarAsync<string>(
            "select e.source from subscription_events e join subscribers s on s.id = e.subscriber_id where s.email = 'gone@example.net' and e.event = 'bounced'"));

        // The same report again (a mailbox read twice, an MTA retrying): counted once.
        Assert.Equal(BounceOutcome.Duplicate, (await Processor.ProcessAsync(dsn, [gone.MailFrom], BounceSource.Mailbox)).Outcome);
        Assert.Equal(1L, await _db.ScalarAsync<long>("select count(*) from bounce_events"));

        // The next digest does not go to the dead address.
        await _services.GetRequiredService<IssueStore>().ImportAsync(SampleIssue.Document with { Slug = "next-week" }, publish: true);
        await SendAsync();
        Assert.DoesNotContain(_smtp.Messages, m => m.Recipients.Contains("gone@example.net"));
        Assert.Contains(_smtp.Messages, m => m.Recipients.Contains("here@example.net"));
    }

    [Fact]
    public async Task A_forged_or_foreign_report_changes_nothing()
    {
        var sent = await SendAsync("victim@example.net", "other@example.net");
        var victim = sent["victim@example.net"];
        // A return path with a made-up MAC, a Message-ID with a made-up MAC, a report about an address
        // we never mailed sent to a valid return path, and a DSN with no key at all.
        var forgedPath = $"bounces+{victim.DeliveryId}-aaaaaaaaaaaaa@{BounceDomain}";
        var forgedId = $"{victim.DeliveryId:x16}0000000000000000@example.org";
        foreach (var (report, envelope) in new[]
        {
            (TestReports.Dsn(forgedPath, "victim@example.net", "5.1.1", "550 5.1.1 User unknown"), forgedPath),
            (TestReports.Dsn("postmaster@example.org", "victim@example.net", "5.1.1", "550 5.1.1 User unknown", forgedId), "postmaster@example.org"),
            (TestReports.Dsn(sent["other@example.net"].MailFrom, "victim@example.net", "5.1.1", "550 5.1.1 User unknown"), sent["other@example.net"].MailFrom),
            (TestReports.Dsn("postmaster@example.org", "victim@example.net", "5.1.1", "550 5.1.1 User unknown"), "postmaster@example.org"),
        })
            Assert.Equal(BounceOutcome.Unmatched, (await Processor.ProcessAsync(report, [envelope], BounceSource.Smtp)).Outcome);
        Assert.Equal("active", await StatusOf("victim@example.net"));
        Assert.Equal("active", await StatusOf("other@example.net"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from bounce_events"));
    }

    [Fact]
    public async Task A_complaint_found_by_its_message_id_unsubscribes_and_suppresses_the_address()
    {
        var sent = await SendAsync("annoyed@example.net");
        var result = await Processor.ProcessAsync(TestReports.Complaint("annoyed@example.net", sent["annoyed@example.net"].MessageId), [], BounceSource.Mailbox);
        Assert.Equal((BounceOutcome.Applied, BounceKind.Complaint), (result.Outcome, result.Verdict!.Kind));
        Assert.Equal("unsubscribed", await StatusOf("annoyed@example.net"));
        Assert.Equal("complaint", await _db.ScalarAsync<string>(
            "select e.source from subscription_events e join subscribers s on s.id = e.subscriber_id where s.email = 'annoyed@example.net' and e.event = 'unsubscribed'"));
        Assert.Equal("complaint", await _db.ScalarAsync<string>("select reason from suppressions"));
        // No import or admin brings the address back.
        await Assert.ThrowsAsync<ConflictException>(() => _services.GetRequiredService<SubscriberStore>()
            .AddActiveAsync(new NewSubscriber("annoyed@example.net", null, Cadence.Weekly, Language.En)));

        // A wrong complaint (a reader who clicked "spam" by mistake) is lifted by an admin, and says so.
        var lifted = await _services.GetRequiredService<SubscriberStore>().UpdateAsync("annoyed@example.net", null, null, SubscriberStatus.Active);
        Assert.Equal(SubscriberStatus.Active, lifted.Status);
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from suppressions"));
        Assert.Equal("admin unsubscribed -> active", await _db.ScalarAsync<string>(
            "select e.source || ' ' || e.detail from subscription_events e join subscribers s on s.id = e.subscriber_id where s.email = 'annoyed@example.net' order by e.id desc limit 1"));
        await _services.GetRequiredService<IssueStore>().ImportAsync(SampleIssue.Document with { Slug = "after-the-complaint" }, publish: true);
        Assert.Contains("annoyed@example.net", (await SendAsync()).Keys);
    }

    [Fact]
    public async Task Soft_bounces_suppress_only_past_the_limit_and_blocks_never_touch_the_subscriber()
    {
        for (var week = 1; week <= 3; week++)
        {
            if (week > 1) await _services.GetRequiredService<IssueStore>().ImportAsync(SampleIssue.Document with { Slug = $"week-{week}" }, publish: true);
            var sent = await SendAsync(week == 1 ? ["full@example.net", "blocked@example.net"] : []);
            var full = sent["full@example.net"];
            var blocked = sent["blocked@example.net"];
            Assert.Equal(BounceKind.Soft, (await Processor.ProcessAsync(TestReports.Dsn(full.MailFrom, "full@example.net", "5.2.2", "552 5.2.2 Mailbox full"), [full.MailFrom], BounceSource.Smtp)).Verdict!.Kind);
            Assert.Equal(BounceKind.Block, (await Processor.ProcessAsync(TestReports.Dsn(blocked.MailFrom, "blocked@example.net", "5.7.1",
                "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"), [blocked.MailFrom], BounceSource.Smtp)).Verdict!.Kind);
            Assert.Equal(week < 3 ? "active" : "bounced", await StatusOf("full@example.net"));
            Assert.Equal("active", await StatusOf("blocked@example.net"));
        }
        var perRun = await _services.GetRequiredService<BounceEvents>().PerRunAsync(20);
        Assert.Equal(3, perRun.Count);
        Assert.All(perRun, r => Assert.Equal((2L, 1L, 1L, 0L, 0L), (r.Sent, r.Soft, r.Block, r.Hard, r.Complaint)));
        Assert.Equal(0.5, perRun[0].Rate(perRun[0].Block));
        Assert.Single(await _services.GetRequiredService<BounceEvents>().PerRunAsync(1, perRun[1].RunId));
        Assert.Contains("3 soft bounces within 30 days", await _db.ScalarAsync<string>("select status_reason from subscribers where email = 'full@example.net'"));
        Assert.Equal(3L, await _db.ScalarAsync<long>("select count(*) from bounce_events where kind = 'block'"));
    }

    [Fact]
    public async Task A_run_whose_messages_receivers_refuse_too_often_pauses_with_the_reason()
    {
        // Two messages per batch, so the run is still sending after the first batch.
        var services = _db.Services(_clock, new SmtpTransport(new SmtpOptions { Host = "127.0.0.1", Port = _smtp.Port, Security = SmtpSecurity.None }),
            delivery: new DeliveryOptions { BatchSize = 2, Lanes = 1 }, bounces: new BounceOptions { Domain = BounceDomain, BlockMinimum = 2, BlockRatePause = 0.5 });
        await services.GetRequiredService<IssueStore>().ImportAsync(SampleIssue.Document, publish: true);
        foreach (var reader in new[] { "a@example.net", "b@example.net", "c@example.net", "d@example.net" })
            await services.GetRequiredService<SubscriberStore>().AddActiveAsync(new NewSubscriber(reader, null, Cadence.Weekly, Language.En));
        _clock.Advance(TimeSpan.FromDays(7));
        var (run, _) = await services.GetRequiredService<SendLedger>().StartDigestAsync(Cadence.Weekly, null);
        await using (var engine = services.GetRequiredService<DeliveryEngine>()) await engine.DeliverBatchAsync();
        Assert.Equal(2, _smtp.Messages.Count);

        var processor = services.GetRequiredService<BounceProcessor>();
        foreach (var message in _smtp.Messages)
        {
            var result = await processor.ProcessAsync(TestReports.Dsn(message.MailFrom, message.Recipients[0], "5.7.1",
                "550 5.7.1 Service unavailable; client [192.0.2.1] blocked using zen.spamhaus.org"), [message.MailFrom], BounceSource.Smtp);
            Assert.Equal(BounceKind.Block, result.Verdict!.Kind);
        }
        var paused = await services.GetRequiredService<SendLedger>().GetAsync(run.Id);
        Assert.Equal("paused", paused!.Status);
        Assert.Contains("receivers refused the sender for 2 of 2 sent messages", paused.PauseReason);
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from subscribers where status <> 'active'"));
        // Paused: the rest of the list waits for an operator.
        await using (var engine = services.GetRequiredService<DeliveryEngine>()) await engine.DeliverBatchAsync();
        Assert.Equal(2, _smtp.Messages.Count);
    }

    /// <summary>Loads raw bytes as the SMTP endpoint and the mailbox do, and processes them; null when they are no message at all.</summary>
    private async Task<BounceResult?> ProcessRawAsync(byte[] raw, string envelope)
    {
        MimeMessage message;
        try { message = await BounceParser.LoadAsync(new MemoryStream(raw)); }
        catch (FormatException) { return null; }
        return await Processor.ProcessAsync(message, [envelope], BounceSource.Smtp);
    }

    [Fact]
    public async Task A_DSN_with_ten_thousand_recipients_and_malformed_MIME_trees_change_nothing_and_block_nothing()
    {
        var sent = await SendAsync("victim@example.net", "gone@example.net");
        var victim = sent["victim@example.net"];

        // 10,000 recipients to a valid return path, the delivery's own address far down the list.
        var dsn = new StringBuilder();
        dsn.Append($"From: MAILER-DAEMON@relay.example.org\r\nTo: {victim.MailFrom}\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n");
        dsn.Append("Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n");
        dsn.Append("--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example.org\r\n");
        for (var i = 0; i < 10_000; i++)
            dsn.Append($"\r\nFinal-Recipient: rfc822; {(i == 9_000 ? "victim" : $"other{i}")}@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n");
        dsn.Append("\r\n--b--\r\n");
        var started = System.Diagnostics.Stopwatch.StartNew();
        var report = BounceParser.Parse(await BounceParser.LoadAsync(new MemoryStream(Encoding.ASCII.GetBytes(dsn.ToString()))));
        Assert.Equal(BounceParser.MaxRecipients, report.Recipients.Count);
        var huge = await ProcessRawAsync(Encoding.ASCII.GetBytes(dsn.ToString()), victim.MailFrom);
        Assert.Equal(BounceOutcome.Unmatched, huge!.Outcome);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(30), $"took {started.Elapsed}");

        // Malformed trees: no closing boundary, 5,000 nested multiparts, a part whose headers never end,
        // binary noise, a report whose DSN part is base64 that is not base64.
        var nested = new StringBuilder($"From: MAILER-DAEMON@relay.example.org\r\nTo: {victim.MailFrom}\r\nMIME-Version: 1.0\r\n");
        for (var i = 0; i < 5_000; i++) nested.Append($"Content-Type: multipart/mixed; boundary=\"n{i}\"\r\n\r\n--n{i}\r\n");
        nested.Append("Content-Type: text/plain\r\n\r\n550 5.1.1 <victim@example.net>: User unknown\r\n");
        var noise = new byte[200_000];
        new Random(7).NextBytes(noise);
        var malformed = new[]
        {
            Encoding.ASCII.GetBytes($"From: MAILER-DAEMON@relay.example.org\r\nTo: {victim.MailFrom}\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay\r\n\r\nFinal-Recipient: rfc822; other@example.net\r\nStatus: 5.1.1\r\n"),
            Encoding.ASCII.GetBytes(nested.ToString()),
            Encoding.ASCII.GetBytes($"From: MAILER-DAEMON@relay.example.org\r\nTo: {victim.MailFrom}\r\nContent-Type: multipart/report; boundary=\"y\"\r\n\r\n--y\r\n" + string.Concat(Enumerable.Repeat("X-Junk: aaaaaaaaaaaaaaaaaaaa\r\n", 20_000))),
            noise,
            Encoding.ASCII.GetBytes($"From: MAILER-DAEMON@relay.example.org\r\nTo: {victim.MailFrom}\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"z\"\r\n\r\n--z\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64 at all!!!\r\n--z--\r\n"),
        };
        foreach (var raw in malformed)
        {
            var result = await ProcessRawAsync(raw, victim.MailFrom);
            Assert.True(result is null || result.Outcome is BounceOutcome.Unmatched or BounceOutcome.Ignored || result.Verdict?.Recipient == "victim@example.net",
                $"{result}");
        }
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from bounce_events where kind <> 'hard' or subscriber_id <> (select id from subscribers where email = 'victim@example.net')"));

        // The processor still works: the next real report is applied.
        var gone = sent["gone@example.net"];
        Assert.Equal(BounceOutcome.Applied, (await Processor.ProcessAsync(TestReports.Dsn(gone.MailFrom, "gone@example.net"), [gone.MailFrom], BounceSource.Smtp)).Outcome);
        Assert.Equal("bounced", await StatusOf("gone@example.net"));
        var metrics = _services.GetRequiredService<DeliveryMetrics>().Write(0, 0);
        Assert.Contains("newsletter_reports_refused_total{source=\"smtp\",reason=\"unmatched\"}", metrics);
    }
}
