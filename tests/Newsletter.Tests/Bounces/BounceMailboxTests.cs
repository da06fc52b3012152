using System.Text;
using MailKit;
using MailKit.Net.Imap;
using MimeKit;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Bounces;

/// <summary>
/// Bounces read from a real mailbox (a private Dovecot) by the running service, over IMAP (IDLE)
/// and POP3: applied once, then deleted; what is not a report of ours is deleted and changes nothing.
/// </summary>
public sealed class BounceMailboxTests
{
    private const string BounceDomain = "bounces.example.org";

    [Theory]
    [InlineData("Imap")]
    [InlineData("Pop3")]
    public async Task A_report_in_the_mailbox_bounces_the_subscriber_once_and_leaves_the_mailbox_empty(string protocol)
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var smtp = new TestSmtpServer();
        using var dovecot = new PrivateDovecot();
        await db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        await db.Subscribers().AddActiveAsync(new NewSubscriber("gone@example.net", null, Cadence.Daily, Language.En));
        await db.Subscribers().AddActiveAsync(new NewSubscriber("here@example.net", null, Cadence.Daily, Language.En));
        var settings = ServiceProcess.SendingTo(smtp);
        settings["Newsletter__Bounces__Domain"] = BounceDomain;
        settings["Newsletter__Bounces__Mailbox__Host"] = "127.0.0.1";
        settings["Newsletter__Bounces__Mailbox__Port"] = (protocol == "Imap" ? dovecot.ImapPort : dovecot.Pop3Port).ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings["Newsletter__Bounces__Mailbox__Protocol"] = protocol;
        settings["Newsletter__Bounces__Mailbox__Security"] = "None";
        settings["Newsletter__Bounces__Mailbox__Username"] = PrivateDovecot.User;
        settings["Newsletter__Bounces__Mailbox__Password"] = PrivateDovecot.Password;
        settings["Newsletter__Bounces__Mailbox__PollInterval"] = "00:00:01";
        await using var service = await ServiceProcess.StartAsync(db, settings);
        using var admin = service.Admin();
        var run = System.Text.Json.JsonDocument.Parse(await (await admin.PostAsync("/api/sends", new StringContent("""{"cadence":"daily"}""", Encoding.UTF8, "application/json"))).Content.ReadAsStringAsync());
        await ServiceProcess.WaitForRunAsync(admin, run.RootElement.GetProperty("id").GetInt64());
        var returnPath = smtp.Messages.Single(m => m.Recipients[0] == "gone@example.net").MailFrom;

        // Into the mailbox: the DSN (twice, as a retrying MTA would), a DSN about an address we never
        // mailed, and a message that is no report at all.
        using var imap = new ImapClient();
        await imap.ConnectAsync("127.0.0.1", dovecot.ImapPort, MailKit.Security.SecureSocketOptions.None);
        await imap.AuthenticateAsync(PrivateDovecot.User, PrivateDovecot.Password);
        await imap.Inbox.OpenAsync(FolderAccess.ReadWrite);
        var hello = new MimeMessage { Subject = "hello", Body = new TextPart("plain") { Text = "Is this the newsletter?" } };
        hello.From.Add(MailboxAddress.Parse("reader@example.net"));
        hello.To.Add(MailboxAddress.Parse(returnPath));
        var dsn = TestReports.Dsn(returnPath, "gone@example.net");
        dsn.Headers.Add("Delivered-To", returnPath); // what the delivering MTA records
        foreach (var message in new[] { dsn, dsn, TestReports.Dsn("bounces+1-aaaaaaaaaaaaa@" + BounceDomain, "stranger@example.net"), hello })
            await imap.Inbox.AppendAsync(new AppendRequest(message));

        var (status, left) = ("", -1);
        for (var i = 0; i < 300 && (status != "bounced" || left != 0); i++)
        {
            await Task.Delay(100);
            status = (await db.ScalarAsync<string>("select status from subscribers where email = 'gone@example.net'"))!;
            await imap.NoOpAsync();
            left = (await imap.Inbox.SearchAsync(MailKit.Search.SearchQuery.NotDeleted)).Count;
        }
        Assert.True(status == "bounced" && left == 0, $"status {status}, {left} messages left; Dovecot said:\n{dovecot.Log()}");
        Assert.Equal(1L, await db.ScalarAsync<long>("select count(*) from bounce_events"));
        Assert.Equal("mailbox", await db.ScalarAsync<string>("select source from bounce_events"));
        Assert.Equal("active", await db.ScalarAsync<string>("select status from subscribers where email = 'here@example.net'"));
        await imap.DisconnectAsync(true);
    }
}
