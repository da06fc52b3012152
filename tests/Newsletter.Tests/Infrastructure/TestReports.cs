using MimeKit;

namespace Newsletter.Tests.Infrastructure;

/// <summary>Bounce reports as MTAs write them, for the bounce tests.</summary>
public static class TestReports
{
    /// <summary>An RFC 3464 DSN (Postfix's layout) sent to <paramref name="to"/> about <paramref name="recipient"/>.</summary>
    public static MimeMessage Dsn(string to, string recipient, string status = "5.1.1",
        string diagnostic = "550 5.1.1 Recipient address rejected: User unknown in virtual mailbox table", string? originalMessageId = null)
    {
        var report = new MultipartReport("delivery-status");
        report.Add(new TextPart("plain") { Text = $"This is the mail system at host relay.example.org.\n\n<{recipient}>: host mx.example.net said: {diagnostic} (in reply to RCPT TO command)\n" });
        var fields = new MessageDeliveryStatus();
        fields.StatusGroups.Add(new HeaderList { { "Reporting-MTA", "dns; relay.example.org" } });
        fields.StatusGroups.Add(new HeaderList { { "Final-Recipient", $"rfc822; {recipient}" }, { "Action", "failed" }, { "Status", status }, { "Diagnostic-Code", $"smtp; {diagnostic}" } });
        report.Add(fields);
        if (originalMessageId is not null)
            report.Add(new TextPart("rfc822-headers") { Text = $"Message-ID: <{originalMessageId}>\nTo: {recipient}\nSubject: Top ML Papers\n" });
        var message = new MimeMessage { Subject = "Undelivered Mail Returned to Sender", Body = report };
        message.From.Add(new MailboxAddress("Mail Delivery System", "MAILER-DAEMON@relay.example.org"));
        message.To.Add(MailboxAddress.Parse(to));
        message.Headers.Add("Auto-Submitted", "auto-replied");
        return message;
    }
}
