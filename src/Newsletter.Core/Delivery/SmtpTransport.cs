using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using Newsletter.Configuration;

namespace Newsletter.Delivery;

/// <summary>Sends through the configured SMTP server with MailKit, one connection per call.</summary>
public sealed class SmtpTransport(SmtpOptions options) : IMailTransport
{
    public string Destination => $"smtp://{options.Host}:{options.Port}";

    public async Task SendAsync(MimeMessage message, MailboxAddress envelopeSender, MailboxAddress recipient, CancellationToken ct = default)
    {
        using var client = CreateClient(options);
        await ConnectAsync(client, options, ct);
        await client.SendAsync(message, envelopeSender, [recipient], ct);
        await client.DisconnectAsync(quit: true, ct);
    }

    internal static SmtpClient CreateClient(SmtpOptions options)
    {
        var client = new SmtpClient { Timeout = options.TimeoutSeconds * 1000 };
        if (!string.IsNullOrWhiteSpace(options.LocalDomain))
            client.LocalDomain = options.LocalDomain;
        return client;
    }

    internal static async Task ConnectAsync(SmtpClient client, SmtpOptions options, CancellationToken ct)
    {
        var security = options.Security switch
        {
            SmtpSecurity.StartTls => SecureSocketOptions.StartTls,
            SmtpSecurity.SslOnConnect => SecureSocketOptions.SslOnConnect,
            _ => SecureSocketOptions.None,
        };
        await client.ConnectAsync(options.Host!, options.Port, security, ct);
        if (!string.IsNullOrEmpty(options.Username))
            await client.AuthenticateAsync(options.Username, options.Password ?? "", ct);
    }
}
