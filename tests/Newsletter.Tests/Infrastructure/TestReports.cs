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

    /// <summary>An RFC 5965 abuse report (Yahoo's layout) about <paramref name="recipient"/>'s copy of <paramref name="originalMessageId"/>.</summary>
    public static MimeMessage Complaint(string recipient, string originalMessageId, string to = "abuse@example.org")
    {
        var report = new MultipartReport("feedback-report");
        report.Add(new TextPart("plain") { Text = "This is an email abuse report for an email message received from IP 192.0.2.1." });
        var feedback = new MimePart("message", "feedback-report")
        {
            Content = new MimeContent(new MemoryStream(System.Text.Encoding.ASCII.GetBytes($"Feedback-Type: abuse\r\nUser-Agent: Yahoo!-Mail-Feedback/2.0\r\nVersion: 0.1\r\nOriginal-Rcpt-To: {recipient}\r\n"))),
        };
        report.Add(feedback);
        report.Add(new TextPart("rfc822-headers") { Text = $"Message-ID: <{originalMessageId}>\nTo: {recipient}\n" });
        var message = new MimeMessage { Subject = "FW: Top ML Papers", Body = report };
        message.From.Add(new MailboxAddress("", "feedback@arf.mail.yahoo.com"));
        message.To.Add(MailboxAddress.Parse(to));
        return message;
    }
}
