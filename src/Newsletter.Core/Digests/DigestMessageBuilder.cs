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
public sealed class DigestMessageBuilder
{
    private readonly LinkSigner _signer;
    private readonly DkimSigning _dkim;
    private readonly TimeProvider _clock;
    private readonly Tracking.ClickTokens? _clicks;
    private readonly string _publicUrl;
    private readonly string _domain;
    // Headers that are the same on every message, encoded once and cloned per message.
    private readonly Header[] _fixedHeaders;

    private readonly Bounces.DeliveryKeys? _keys;

    // Postmark passes X-PM-Metadata-* headers back in its webhooks (and keeps its own Message-ID).
    private readonly bool _postmarkMetadata;

    public DigestMessageBuilder(IOptions<NewsletterOptions> options, LinkSigner signer, DkimSigning dkim, TimeProvider clock, Bounces.DeliveryKeys? keys = null,
        IOptions<PostmarkWebhookOptions>? postmark = null, Tracking.ClickTokens? clicks = null)
    {
        _clicks = clicks;
        _keys = keys;
        _postmarkMetadata = !string.IsNullOrEmpty(postmark?.Value.Username);
        _signer = signer;
        _dkim = dkim;
        _clock = clock;
        var o = options.Value;
        _publicUrl = o.PublicUrl.TrimEnd('/');
        var from = o.FromMailbox;
        _domain = Domain(from);
        var prototype = new MimeMessage((IEnumerable<Header>)Array.Empty<Header>());
        prototype.From.Add(from);
        if (!string.IsNullOrWhiteSpace(o.ReplyTo)) prototype.ReplyTo.Add(MailboxAddress.Parse(o.ReplyTo));
        prototype.Headers.Add(HeaderId.ListId, ListId(o));
        prototype.Headers.Add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
        prototype.Headers.Add("Auto-Submitted", "auto-generated");
        prototype.Headers.Add("Precedence", "bulk");
        _fixedHeaders = prototype.Headers.ToArray();
    }

    /// <summary>
    /// Builds the message of delivery <paramref name="deliveryKey"/> (a stable identifier of this
    /// issue-to-subscriber delivery), dated now: call it when the message is about to be sent. A
    /// digest with tracked links gets this delivery's signed <c>/r/{token}</c> URLs.
    /// </summary>
    public MimeMessage Build(DigestTemplate digest, Subscriber subscriber, string deliveryKey, Tracking.ClickCadence cadence = Tracking.ClickCadence.Broadcast)
    {
        var now = _clock.GetUtcNow();
        var unsubscribeUrl = $"{_publicUrl}/unsubscribe/{_signer.Create(LinkPurpose.Unsubscribe, subscriber.PublicId, now)}";
        var preferencesUrl = $"{_publicUrl}/preferences/{_signer.Create(LinkPurpose.Preferences, subscriber.PublicId, now)}";
        var deliveryId = DeliveryId(deliveryKey);
        Func<int, string>? links = null;
        if (digest.TrackedLinks.Count > 0)
        {
            if (_clicks is null || deliveryId is not { } id) throw new InvalidOperationException("A digest with tracked links is built for a delivery");
            var tokens = _clicks;
            var places = digest.TrackedLinks;
            var language = digest.Language;
            links = k => $"{_publicUrl}/r/{tokens.Create(new Tracking.ClickPlace(id, places[k].IssueId, places[k].Item, places[k].Link, now, language, cadence))}";
        }
        var body = digest.Encode(new Recipient(subscriber.Name, unsubscribeUrl, preferencesUrl, links));

        // Starting from the prepared headers skips the defaults MimeMessage() would generate
        // (a Message-ID on the host name among them) only to have them replaced.
        var headers = new List<Header>(_fixedHeaders.Length + 1);
        foreach (var header in _fixedHeaders) headers.Add(header.Clone());
        headers.Add(digest.SubjectHeader.Clone());
        var message = new MimeMessage(headers);
        message.Date = now;
        message.To.Add(new MailboxAddress(subscriber.Name ?? "", subscriber.Email));
        message.MessageId = _keys is not null && deliveryId is { } delivery
            ? _keys.MessageId(delivery, _domain) // authenticated: a bounce that quotes it finds its delivery
            : MessageId(deliveryKey, _domain);
        if (_postmarkMetadata) message.Headers.Add(Bounces.Webhooks.ProviderEvents.PostmarkMetadataHeader, message.MessageId);

        // Written raw so MimeKit never RFC 2047-encodes it (mail providers ignore an encoded List-Unsubscribe).
        var listUnsubscribe = new Header(HeaderId.ListUnsubscribe, "");
        listUnsubscribe.SetRawValue(Encoding.ASCII.GetBytes($" <{unsubscribeUrl}>\r\n"));
        message.Headers.Add(listUnsubscribe);
        message.Headers.Add(HeaderId.MimeVersion, "1.0");

        // text/plain first, text/html last (the part a client prefers), both UTF-8 in 7-bit transfer
        // encodings, with everything the readers share encoded once per digest.
        message.Body = body;
        // Sign last, and change nothing afterwards.
        _dkim.Sign(message);
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

    private static long? DeliveryId(string deliveryKey) =>
        deliveryKey.StartsWith("delivery/", StringComparison.Ordinal)
        && long.TryParse(deliveryKey.AsSpan("delivery/".Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id)
            ? id : null;

    private static string Domain(MailboxAddress mailbox) => mailbox.Domain.ToLowerInvariant();

    private static string MessageId(string deliveryKey, string domain)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(deliveryKey));
        return $"{Convert.ToHexString(hash, 0, 16).ToLowerInvariant()}@{domain}";
    }
}
