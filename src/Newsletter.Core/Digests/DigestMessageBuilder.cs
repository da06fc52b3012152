using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using MimeKit;
using Newsletter.Configuration;
using Newsletter.Subscribers;

namespace Newsletter.Digests;

/// <summary>
/// Turns a rendered digest into the MIME message for one subscriber: multipart/alternative (text,
/// then HTML), UTF-8, one-click unsubscribe headers, and a Message-ID on the sending domain that is
/// the same every time the same delivery is built.
/// </summary>
public sealed class DigestMessageBuilder(IOptions<NewsletterOptions> options, LinkSigner signer, DkimSigning dkim, TimeProvider clock)
{
    /// <summary>
    /// Builds the message of delivery <paramref name="deliveryKey"/> (a stable identifier of this
    /// issue-to-subscriber delivery), dated now: call it when the message is about to be sent.
    /// </summary>
    public MimeMessage Build(DigestTemplate digest, Subscriber subscriber, string deliveryKey)
    {
        var o = options.Value;
        var now = clock.GetUtcNow();
        var publicUrl = o.PublicUrl.TrimEnd('/');
        var unsubscribeUrl = $"{publicUrl}/unsubscribe/{signer.Create(LinkPurpose.Unsubscribe, subscriber.PublicId, now)}";
        var preferencesUrl = $"{publicUrl}/preferences/{signer.Create(LinkPurpose.Preferences, subscriber.PublicId, now)}";
        var body = digest.Personalize(new Recipient(subscriber.Name, unsubscribeUrl, preferencesUrl));

        var from = o.FromMailbox;
        var message = new MimeMessage { Subject = digest.Subject, Date = now };
        message.From.Add(from);
        if (!string.IsNullOrWhiteSpace(o.ReplyTo)) message.ReplyTo.Add(MailboxAddress.Parse(o.ReplyTo));
        message.To.Add(new MailboxAddress(subscriber.Name ?? "", subscriber.Email));
        message.MessageId = MessageId(deliveryKey, Domain(from));

        // Written raw so MimeKit never RFC 2047-encodes it (mail providers ignore an encoded List-Unsubscribe).
        var listUnsubscribe = new Header(HeaderId.ListUnsubscribe, "");
        listUnsubscribe.SetRawValue(Encoding.ASCII.GetBytes($" <{unsubscribeUrl}>\r\n"));
        message.Headers.Add(listUnsubscribe);
        message.Headers.Add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
        message.Headers.Add(HeaderId.ListId, ListId(o));
        message.Headers.Add("Auto-Submitted", "auto-generated");
        message.Headers.Add("Precedence", "bulk");

        var builder = new BodyBuilder { TextBody = body.Text, HtmlBody = body.Html };
        message.Body = builder.ToMessageBody();
        foreach (var part in message.BodyParts.OfType<TextPart>())
            part.ContentType.Charset = "utf-8";

        // 7-bit transfer encodings (base64 for Korean-heavy parts, quoted-printable otherwise) so the
        // message survives any relay; then sign, and change nothing after signing.
        message.Prepare(EncodingConstraint.SevenBit);
        dkim.Sign(message);
        return message;
    }

    /// <summary><c>List-Id: Name &lt;newsletter.example.org&gt;</c>, from the From mailbox.</summary>
    public static string ListId(NewsletterOptions o)
    {
        var from = o.FromMailbox;
        var name = DigestRenderer.NewsletterName(o);
        var ascii = new string(name.Where(c => c < 128 && !char.IsControl(c) && c is not '<' and not '>' and not '"').ToArray()).Trim();
        var id = $"{from.LocalPart}.{Domain(from)}".ToLowerInvariant();
        return ascii.Length > 0 ? $"\"{ascii}\" <{id}>" : $"<{id}>";
    }

    private static string Domain(MailboxAddress mailbox) => mailbox.Domain.ToLowerInvariant();

    private static string MessageId(string deliveryKey, string domain)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(deliveryKey));
        return $"{Convert.ToHexString(hash, 0, 16).ToLowerInvariant()}@{domain}";
    }
}
