using System.Net;
using System.Text;
using MailKit.Net.Smtp;
using MimeKit;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;
using Newsletter.Tests.Web;

namespace Newsletter.Tests.Bounces;

/// <summary>
/// The service's SMTP endpoint for bounces (Newsletter__Bounces__Listen), against the running
/// service: a digest goes out to a real SMTP server, its DSN comes back by SMTP to the return path.
/// </summary>
public sealed class BounceEndpointTests
{
    private const string BounceDomain = "bounces.example.org";

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    [Fact]
    public async Task A_DSN_handed_to_the_endpoint_bounces_the_subscriber_and_other_mail_is_refused()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var smtp = new TestSmtpServer();
        await db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        await db.Subscribers().AddActiveAsync(new NewSubscriber("gone@example.net", null, Cadence.Daily, Language.En));
        await db.Subscribers().AddActiveAsync(new NewSubscriber("here@example.net", null, Cadence.Daily, Language.En));
        var port = LoopbackPort.Free();
        var settings = ServiceProcess.SendingTo(smtp);
        settings["Newsletter__Bounces__Domain"] = BounceDomain;
        settings["Newsletter__Bounces__Listen"] = $"127.0.0.1:{port}";
        settings["Newsletter__Bounces__MaxMessageBytes"] = "200000";
        await using var service = await ServiceProcess.StartAsync(db, settings);
        using var admin = service.Admin();
        var run = System.Text.Json.JsonDocument.Parse(await (await admin.PostAsync("/api/sends", Json("""{"cadence":"daily"}"""))).Content.ReadAsStringAsync());
        var id = run.RootElement.GetProperty("id").GetInt64();
        await ServiceProcess.WaitForRunAsync(admin, id);
        var returnPath = smtp.Messages.Single(m => m.Recipients[0] == "gone@example.net").MailFrom;
        Assert.EndsWith("@" + BounceDomain, returnPath);

        using var client = new SmtpClient();
        await client.ConnectAsync("127.0.0.1", port, MailKit.Security.SecureSocketOptions.None);
        // Mail for any other domain is refused at RCPT.
        var elsewhere = await Assert.ThrowsAsync<SmtpCommandException>(() =>
            client.SendAsync(TestReports.Dsn("someone@example.com", "gone@example.net"), MailboxAddress.Parse("MAILER-DAEMON@relay.example.org"), [MailboxAddress.Parse("someone@example.com")]));
        Assert.Equal(SmtpStatusCode.MailboxUnavailable, elsewhere.StatusCode);
        // A report bigger than the limit is refused.
        var huge = TestReports.Dsn(returnPath, "gone@example.net");
        ((MultipartReport)huge.Body!).Add(new TextPart("plain") { Text = new string('x', 300_000) });
        var tooBig = await Assert.ThrowsAsync<SmtpCommandException>(() =>
            client.SendAsync(huge, MailboxAddress.Parse("MAILER-DAEMON@relay.example.org"), [MailboxAddress.Parse(returnPath)]));
        Assert.Equal(SmtpStatusCode.ExceededStorageAllocation, tooBig.StatusCode);
        if (!client.IsConnected) await client.ConnectAsync("127.0.0.1", port, MailKit.Security.SecureSocketOptions.None);
        Assert.Equal("active", await db.ScalarAsync<string>("select status from subscribers where email = 'gone@example.net'"));

        // The DSN to the return path: accepted once processed, and the subscriber is bounced.
        await client.SendAsync(TestReports.Dsn(returnPath, "gone@example.net"), new MailboxAddress("", ""), [MailboxAddress.Parse(returnPath)]);
        await client.DisconnectAsync(true);
        Assert.Equal("bounced", await db.ScalarAsync<string>("select status from subscribers where email = 'gone@example.net'"));
        Assert.Equal("active", await db.ScalarAsync<string>("select status from subscribers where email = 'here@example.net'"));
        var deliveries = await admin.GetStringAsync($"/api/sends/{id}/deliveries");
        Assert.Contains("bounced after delivery: 5.1.1 userunknown", deliveries);

        // What an admin sees: the API, the metrics and the CLI.
        var bounces = System.Text.Json.JsonDocument.Parse(await admin.GetStringAsync("/api/bounces?kind=hard")).RootElement;
        var stored = Assert.Single(bounces.GetProperty("items").EnumerateArray());
        Assert.Equal(("gone@example.net", "hard", "5.1.1", "smtp", id), (stored.GetProperty("email").GetString(), stored.GetProperty("kind").GetString(),
            stored.GetProperty("status").GetString(), stored.GetProperty("source").GetString(), stored.GetProperty("runId").GetInt64()));
        Assert.Empty(System.Text.Json.JsonDocument.Parse(await admin.GetStringAsync("/api/bounces?kind=complaint")).RootElement.GetProperty("items").EnumerateArray());
        using (var badKind = await admin.GetAsync("/api/bounces?kind=sideways"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, badKind.StatusCode);
            Assert.Equal("kind", System.Text.Json.JsonDocument.Parse(await badKind.Content.ReadAsStringAsync()).RootElement.GetProperty("field").GetString());
        }
        Assert.Contains("newsletter_bounces_total{kind=\"hard\"} 1", await admin.GetStringAsync("/metrics"));
        // A complaint about the other reader's copy, by the same way in; then the dashboard shows the run's rates.
        var here = smtp.Messages.Single(m => m.Recipients[0] == "here@example.net");
        using (var again = new SmtpClient())
        {
            await again.ConnectAsync("127.0.0.1", port, MailKit.Security.SecureSocketOptions.None);
            await again.SendAsync(TestReports.Complaint("here@example.net", here.Message.MessageId!, here.MailFrom), new MailboxAddress("", ""), [MailboxAddress.Parse(here.MailFrom)]);
            await again.DisconnectAsync(true);
        }
        Assert.Equal("unsubscribed", await db.ScalarAsync<string>("select status from subscribers where email = 'here@example.net'"));
        using var page = new PageClient(service.BaseAddress);
        await page.GetAsync("/admin/login");
        Assert.Equal(HttpStatusCode.SeeOther, (await page.PostAsync("/admin/login", [("key", ServiceProcess.AdminKey)])).Status);
        var runPage = PageClient.Text((await page.GetAsync($"/admin/runs/{id}")).Html);
        Assert.Contains("After delivery: 1 dead addresses (50.0 %)", runPage);
        Assert.Contains("1 complaints (50.00 %", runPage);
        var overview = (await page.GetAsync("/admin/")).Html;
        Assert.Contains("Complaint rate per run, last 20 runs: 1 of 1 runs above 0.3 %", overview);
        Assert.Contains("class=\"bar over\"", overview);

        var cli = await NewsletterProcess.RunAsync(db, NewsletterProcess.TempDirectory(), "bounce", "list", "--kind", "hard");
        Assert.True(cli.ExitCode == 0, cli.Error);
        Assert.Contains("gone@example.net", cli.Output);
        Assert.Contains("userunknown", cli.Output);
    }

    [Fact]
    public async Task Postfix_writes_the_DSN_for_a_refused_digest_and_hands_it_to_the_endpoint()
    {
        await using var db = await TestDatabase.CreateAsync();
        // The recipient's server: refuses the address at RCPT.
        await using var destination = new ScriptedSmtpServer { RcptReply = (rcpt, _) => $"550 5.1.1 {rcpt}: Recipient address rejected: User unknown in virtual mailbox table" };
        var listen = LoopbackPort.Free();
        // The relay the service sends through: digests for example.net go to the refusing server,
        // and what Postfix writes back to bounces.example.org goes to the service's endpoint.
        using var postfix = new PrivatePostfix($$"""
            transport_maps = inline:{ example.net=smtp:[127.0.0.1]:{{destination.Port}}, {{BounceDomain}}=smtp:[127.0.0.1]:{{listen}} }
            """);
        await db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        await db.Subscribers().AddActiveAsync(new NewSubscriber("nobody-here@example.net", null, Cadence.Daily, Language.En));
        var settings = new Dictionary<string, string?>
        {
            ["Newsletter__Smtp__Host"] = "127.0.0.1", ["Newsletter__Smtp__Port"] = postfix.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Newsletter__Smtp__Security"] = "None", ["Newsletter__Delivery__PollInterval"] = "00:00:00.200", ["Newsletter__Schedule__MaxLateness"] = "00:00:00",
            ["Newsletter__Bounces__Domain"] = BounceDomain, ["Newsletter__Bounces__Listen"] = $"127.0.0.1:{listen}",
        };
        ServiceProcess service;
        try { service = await ServiceProcess.StartAsync(db, settings); }
        catch (TimeoutException e) { throw new TimeoutException($"{e.Message}; Postfix said:\n{postfix.Log()}"); }
        await using var _ = service;
        using var admin = service.Admin();
        var run = System.Text.Json.JsonDocument.Parse(await (await admin.PostAsync("/api/sends", Json("""{"cadence":"daily"}"""))).Content.ReadAsStringAsync());
        var id = run.RootElement.GetProperty("id").GetInt64();
        // Postfix accepted the digest (sent), then met the 550, wrote a DSN to the return path and delivered it.
        Assert.Equal(1, (await ServiceProcess.WaitForRunAsync(admin, id)).GetProperty("sent").GetInt32());
        var status = "";
        for (var i = 0; i < 300 && status != "bounced"; i++)
        {
            await Task.Delay(100);
            status = (await db.ScalarAsync<string>("select status from subscribers where email = 'nobody-here@example.net'"))!;
        }
        Assert.True(status == "bounced", $"not bounced; Postfix said:\n{postfix.Log()}");
        var deliveries = await admin.GetStringAsync($"/api/sends/{id}/deliveries");
        Assert.Contains("bounced after delivery: 5.1.1 userunknown", deliveries);
        Assert.Contains("5.1.1", await db.ScalarAsync<string>("select detail from subscription_events where event = 'bounced'"));
    }
}
