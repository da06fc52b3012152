using MimeKit;

namespace Newsletter.Delivery;

/// <summary>Puts one finished message on its way: to an SMTP server, or to the pickup folder.</summary>
public interface IMailTransport
{
    /// <summary>Where messages go, for people: "smtp://host:port" or the pickup folder's path.</summary>
    string Destination { get; }

    /// <summary>Sends <paramref name="message"/> to <paramref name="recipient"/> with <paramref name="envelopeSender"/> as MAIL FROM.</summary>
    Task SendAsync(MimeMessage message, MailboxAddress envelopeSender, MailboxAddress recipient, CancellationToken ct = default);
}
