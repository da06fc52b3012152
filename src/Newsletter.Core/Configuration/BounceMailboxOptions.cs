namespace Newsletter.Configuration;

public enum MailboxProtocol { Imap, Pop3 }

/// <summary>
/// The <c>Newsletter:Bounces:Mailbox</c> section: a mailbox the service reads bounces and complaints
/// from (where the bounce domain's mail is delivered, or a provider's feedback-loop address).
/// </summary>
public sealed class BounceMailboxOptions
{
    public const string Section = "Newsletter:Bounces:Mailbox";

    /// <summary>IMAP or POP3 server. Unset: no mailbox is read.</summary>
    public string? Host { get; set; }

    /// <summary>Port; 0: the protocol's default for the security (993/143, 995/110).</summary>
    public int Port { get; set; }

    public MailboxProtocol Protocol { get; set; } = MailboxProtocol.Imap;

    /// <summary><c>None</c>, <c>StartTls</c> or <c>SslOnConnect</c> (the same words as <c>Newsletter__Smtp__Security</c>).</summary>
    public SmtpSecurity Security { get; set; } = SmtpSecurity.SslOnConnect;

    public string? Username { get; set; }

    public string? Password { get; set; }

    /// <summary>The IMAP folder to read (POP3 has only one).</summary>
    public string Folder { get; set; } = "INBOX";

    /// <summary>How often the mailbox is read when the server offers no IMAP IDLE (and at most how long an IDLE lasts).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMinutes(1);

    public int ResolvedPort => Port > 0 ? Port : (Protocol, Security) switch
    {
        (MailboxProtocol.Imap, SmtpSecurity.SslOnConnect) => 993,
        (MailboxProtocol.Imap, _) => 143,
        (MailboxProtocol.Pop3, SmtpSecurity.SslOnConnect) => 995,
        _ => 110,
    };
}
