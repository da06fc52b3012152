using System.Text.RegularExpressions;
using MimeKit;

namespace Newsletter.Bounces;

/// <summary>
/// Reads a bounce, a complaint or an auto-reply: RFC 5965 ARF feedback reports, RFC 3464 delivery
/// status notifications (MimeKit's <see cref="MessageDeliveryStatus"/>), and the plain-text bounces
/// of MTAs that write none (qmail, old Sendmail and Exim, Exchange, providers' own formats). Every
/// recipient gets one <see cref="BounceVerdict"/> from <see cref="BounceClassifier"/>.
/// </summary>
public static partial class BounceParser
{
    /// <summary>Reports are read up to this many recipients; a longer list is cut (and the rest ignored).</summary>
    public const int MaxRecipients = 100;

    // Japanese, Chinese and Korean MTAs write their reports in legacy charsets (ISO-2022-JP, EUC-KR, ...).
    static BounceParser() => System.Text.Encoding.RegisterProvider(System.Text.CodePagesEncodingProvider.Instance);

    /// <summary>Reads a report (RFC 5322) from a stream: bounded, and with the legacy charsets available to MimeKit.</summary>
    public static async Task<MimeMessage> LoadAsync(Stream stream, CancellationToken ct = default) =>
        await MimeMessage.LoadAsync(stream, ct);

    public static BounceReport Parse(MimeMessage message)
    {
        var originalId = OriginalMessageId(message);
        if (FeedbackReport(message) is { } feedback) return new BounceReport(feedback, originalId);
        if (DeliveryStatus(message) is { Count: > 0 } dsn) return new BounceReport(dsn, originalId);
        // A report forwarded inside another message (a relay returning the bounce it received).
        if (message.BodyParts.OfType<MessagePart>().Select(p => p.Message).FirstOrDefault(m => m?.Body?.ContentType.IsMimeType("multipart", "report") == true) is { } inner)
            return Parse(inner);
        var text = HumanText(message);
        if (IsAutoReply(message, text)) return new BounceReport([new BounceVerdict(Sender(message), null, null, BounceKind.AutoReply, "vacation", null)], originalId);
        return new BounceReport(PlainText(message, text), originalId);
    }

    // ---- ARF (RFC 5965) ------------------------------------------------------------------------

    private static List<BounceVerdict>? FeedbackReport(MimeMessage message)
    {
        var part = message.BodyParts.FirstOrDefault(p => p.ContentType.IsMimeType("message", "feedback-report"));
        HeaderList? fields = part switch
        {
            MessageFeedbackReport report => report.Fields,
            MimePart mime => ReadFields(mime),
            _ => null,
        };
        if (fields is null && ForwardedComplaint(message) is { } forwarded) return forwarded;
        if (fields is null)
        {
            // Some providers send the report's fields in the body of a plain message.
            var text = message.TextBody ?? "";
            if (!FeedbackTypeLine().IsMatch(text)) return null;
            fields = ReadFields(text);
        }
        var type = (fields["Feedback-Type"] ?? "abuse").Trim().ToLowerInvariant();
        var recipients = fields.Where(h => h.Field.Equals("Original-Rcpt-To", StringComparison.OrdinalIgnoreCase)).Select(h => Address(h.Value)).OfType<string>().ToList();
        if (recipients.Count == 0 && OriginalHeaders(message) is { } original)
            recipients.AddRange(original.Where(h => h.Id == HeaderId.To).SelectMany(h => InternetAddressList.TryParse(h.Value, out var list) ? list.Mailboxes.Select(m => m.Address) : []));
        if (recipients.Count == 0) recipients.Add(null!);
        var (kind, reason) = type == "auth-failure" ? (BounceKind.NotABounce, "auth-failure report") : (BounceKind.Complaint, $"feedback: {type}");
        return recipients.Take(MaxRecipients).Select(r => new BounceVerdict(r, null, null, kind, reason, null)).ToList();
    }

    /// <summary>
    /// A complaint some providers send without ARF (Hotmail's "complaint about message from ..."):
    /// the reported message attached whole, under a subject that says it is a complaint.
    /// </summary>
    private static List<BounceVerdict>? ForwardedComplaint(MimeMessage message)
    {
        if (!ComplaintSubject().IsMatch(message.Subject ?? "")) return null;
        if (message.BodyParts.OfType<MessagePart>().FirstOrDefault()?.Message is not { } reported) return null;
        var recipient = Address(reported.Headers["X-HmXmrOriginalRecipient"]) ?? reported.To.Mailboxes.FirstOrDefault()?.Address;
        return [new BounceVerdict(recipient, null, null, BounceKind.Complaint, "feedback: abuse", null)];
    }

    // ---- DSN (RFC 3464) ------------------------------------------------------------------------

    private static List<BounceVerdict>? DeliveryStatus(MimeMessage message)
    {
        var part = message.BodyParts.FirstOrDefault(p => p.ContentType.IsMimeType("message", "delivery-status") || p.ContentType.IsMimeType("message", "global-delivery-status"));
        var human = HumanText(message);
        List<HeaderList> groups;
        if (part is not null) groups = part is MessageDeliveryStatus status ? status.StatusGroups.ToList() : ReadGroups(part as MimePart);
        else if (FinalRecipientLine().Match(human) is { Success: true } fields) groups = [[], .. ReadGroups(human[fields.Index..])];
        else return null;
        var verdicts = new List<BounceVerdict>();
        foreach (var group in groups.Skip(1).Where(g => g["Final-Recipient"] is not null || g["Original-Recipient"] is not null).Take(MaxRecipients))
        {
            var recipient = Address(group["Final-Recipient"] ?? group["Original-Recipient"]);
            var action = (group["Action"] ?? "").Trim().ToLowerInvariant();
            var code = StatusCode().Match(group["Status"] ?? "") is { Success: true } m ? m.Value : null;
            var diagnostic = Clean(StripType(group["Diagnostic-Code"]));
            if (group["Diagnostic-Code"]?.TrimStart().StartsWith("x-unix", StringComparison.OrdinalIgnoreCase) == true)
            {
                // A local delivery program failed (procmail, a filter script): the receiver's own trouble.
                verdicts.Add(new BounceVerdict(recipient, code, null, BounceKind.Soft, "mailererror", diagnostic));
                continue;
            }
            if (action is "delivered" or "relayed" or "expanded")
            {
                verdicts.Add(new BounceVerdict(recipient, code, null, BounceKind.NotABounce, action, diagnostic));
                continue;
            }
            // The diagnostic speaks for this recipient; the human-readable part (the part of the
            // report around this address) fills in when it says nothing.
            var around = recipient is null ? human : Around(human, recipient);
            verdicts.Add(BounceClassifier.Classify(recipient, code ?? StatusCode().Match(diagnostic ?? "").Value.NullIfEmpty(), diagnostic, around,
                action == "delayed"));
        }
        return verdicts;
    }

    // ---- auto-replies (RFC 3834) ---------------------------------------------------------------

    private static bool IsAutoReply(MimeMessage message, string text)
    {
        var auto = message.Headers["Auto-Submitted"]?.Trim().ToLowerInvariant();
        var subject = message.Subject ?? "";
        var marked = auto is not null && auto.StartsWith("auto-replied", StringComparison.Ordinal)
            || message.Headers.Contains("X-Autoreply") || message.Headers.Contains("X-Autorespond")
            || (message.Headers["Precedence"] ?? "").Contains("auto_reply", StringComparison.OrdinalIgnoreCase)
            || AutoReplySubject().IsMatch(subject);
        // Bounces are auto-replied too (RFC 3834 asks MTAs to mark them): only a message that does not
        // read like one is an auto-reply.
        return marked && !BounceSubject().IsMatch(subject) && !BounceClassifier.LooksLikeBounce(text) && !IsFromDaemon(message);
    }

    // ---- plain-text bounces --------------------------------------------------------------------

    private static List<BounceVerdict> PlainText(MimeMessage message, string text)
    {
        var own = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var m in message.From.Mailboxes.Concat(message.To.Mailboxes)) own.Add(m.Address);
        var recipients = new List<(string Address, int Index)>();
        foreach (Match m in AddressPattern().Matches(text))
        {
            var address = m.Value.Trim('.', '<', '>');
            // An address named once as a help desk or a sender is not a recipient anywhere in the text.
            if (NotARecipient().IsMatch(text[Math.Max(0, m.Index - 40)..m.Index])) own.Add(address);
            if (own.Contains(address) || IsDaemonAddress(address) || recipients.Any(r => r.Address.Equals(address, StringComparison.OrdinalIgnoreCase))) continue;
            recipients.Add((address, m.Index));
            if (recipients.Count == MaxRecipients) break;
        }
        if (recipients.Count == 0 && OriginalHeaders(message) is { } original)
            foreach (var h in original.Where(h => h.Id == HeaderId.To))
                if (InternetAddressList.TryParse(h.Value, out var list))
                    recipients.AddRange(list.Mailboxes.Select(mb => (mb.Address, -1)));
        var looksLikeBounce = BounceClassifier.LooksLikeBounce(text) || IsFromDaemon(message) || BounceSubject().IsMatch(message.Subject ?? "");
        if (!looksLikeBounce)
            return [new BounceVerdict(recipients.FirstOrDefault().Address, null, null, BounceKind.NotABounce, "not a bounce", null)];
        if (recipients.Count == 0)
            return [BounceClassifier.Classify(null, StatusCode().Match(text).Value.NullIfEmpty(), null, text, delayed: false)];
        var verdicts = new List<BounceVerdict>();
        for (var i = 0; i < recipients.Count; i++)
        {
            var (address, index) = recipients[i];
            var segment = index < 0 ? text : text[index..(i + 1 < recipients.Count && recipients[i + 1].Index > index ? recipients[i + 1].Index : text.Length)];
            // The part about this address, else the whole text (a reason written once, above the list).
            var verdict = BounceClassifier.Classify(address, StatusCode().Match(segment).Value.NullIfEmpty(), null, segment, delayed: false);
            if (verdict.Reason == BounceClassifier.Undefined)
                verdict = BounceClassifier.Classify(address, StatusCode().Match(text).Value.NullIfEmpty(), null, text, delayed: false);
            verdicts.Add(verdict);
        }
        return verdicts;
    }

    // ---- helpers -------------------------------------------------------------------------------

    /// <summary>The report's own words: its text parts (not the returned message), cut where the copy of the original begins.</summary>
    internal static string HumanText(MimeMessage message)
    {
        var parts = message.BodyParts.OfType<TextPart>()
            .Where(p => !p.ContentType.IsMimeType("text", "rfc822-headers") && !p.IsAttachment)
            .Select(p => p.IsHtml ? HtmlText(Text(p)) : Text(p))
            .ToList();
        var text = string.Join("\n", parts);
        if (string.IsNullOrWhiteSpace(text)) text = RawBody(message);
        if (text.Length > 200_000) text = text[..200_000];
        var cut = OriginalMarker().Match(text);
        return cut.Success && cut.Index > 0 ? text[..cut.Index] : text;
    }

    /// <summary>
    /// A text part in its declared charset, decoded here with the platform's code pages (registered
    /// above) rather than by MimeKit, whose view of the available charsets depends on whether it was
    /// first used before they were registered.
    /// </summary>
    private static string Text(TextPart part)
    {
        if (part.ContentType.Charset is { Length: > 0 } charset)
        {
            try
            {
                return part.GetText(System.Text.Encoding.GetEncoding(charset));
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException) { } // an unknown or disabled charset (UTF-7): MimeKit's best effort
        }
        return part.Text;
    }

    /// <summary>The body as written, for a report whose MIME structure is broken (a multipart without boundaries).</summary>
    private static string RawBody(MimeMessage message)
    {
        if (message.Body is Multipart { Count: 0 } empty) return (empty.Preamble ?? "") + "\n" + (empty.Epilogue ?? "");
        if (message.Body is null) return "";
        using var stream = new MemoryStream();
        message.Body.WriteTo(FormatOptions.Default, stream, contentOnly: true);
        return System.Text.Encoding.UTF8.GetString(stream.GetBuffer(), 0, (int)Math.Min(stream.Length, 200_000));
    }

    private static string HtmlText(string html) => System.Net.WebUtility.HtmlDecode(HtmlTag().Replace(html, " "));

    private static string Around(string text, string address)
    {
        var at = text.IndexOf(address, StringComparison.OrdinalIgnoreCase);
        return at < 0 ? text : text[at..Math.Min(text.Length, at + 1500)];
    }

    /// <summary>The headers of the message that bounced, when the report carries them.</summary>
    private static HeaderList? OriginalHeaders(MimeMessage message)
    {
        foreach (var part in message.BodyParts)
        {
            if (part is MessagePart { Message: { } original }) return original.Headers;
            if (part is TextPart text && text.ContentType.IsMimeType("text", "rfc822-headers"))
                return ReadFields(text.Text);
        }
        return null;
    }

    private static string? OriginalMessageId(MimeMessage message)
    {
        if (OriginalHeaders(message)?[HeaderId.MessageId] is { } id) return MimeKit.Utils.MimeUtils.EnumerateReferences(id).FirstOrDefault();
        var body = message.TextBody ?? "";
        return OriginalMessageIdLine().Match(body) is { Success: true } m ? m.Groups[1].Value.Trim('<', '>') : null;
    }

    private static HeaderList ReadFields(MimePart part)
    {
        using var stream = new MemoryStream();
        part.Content?.DecodeTo(stream);
        return ReadFields(System.Text.Encoding.UTF8.GetString(stream.GetBuffer(), 0, (int)stream.Length));
    }

    private static HeaderList ReadFields(string text)
    {
        try
        {
            using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(text.TrimStart() + "\n\n"));
            return HeaderList.Load(stream);
        }
        catch (FormatException)
        {
            return [];
        }
    }

    private static List<HeaderList> ReadGroups(MimePart? part)
    {
        if (part is null) return [];
        using var stream = new MemoryStream();
        part.Content?.DecodeTo(stream);
        return ReadGroups(System.Text.Encoding.UTF8.GetString(stream.GetBuffer(), 0, (int)stream.Length));
    }

    private static List<HeaderList> ReadGroups(string text) =>
        text.Replace("\r\n", "\n").Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(ReadFields).ToList();

    private static string? Address(string? field)
    {
        if (string.IsNullOrWhiteSpace(field)) return null;
        var value = StripType(field)!.Trim().Trim('<', '>', ' ');
        return AddressPattern().Match(value) is { Success: true } m ? m.Value.Trim('.') : value.Length > 0 ? value : null;
    }

    /// <summary>"rfc822; a@b" -> "a@b", "smtp; 550 ..." -> "550 ...".</summary>
    private static string? StripType(string? field) =>
        field is null ? null : field.IndexOf(';') is var semi and >= 0 && semi < 12 ? field[(semi + 1)..] : field;

    private static string? Clean(string? text) => text is null ? null : Whitespace().Replace(Jis(text), " ").Trim().NullIfEmpty();

    /// <summary>A header field written in raw ISO-2022-JP (Japanese MTAs do): decoded, so its words can be read.</summary>
    private static string Jis(string text)
    {
        if (!text.Contains("\u001b$B", StringComparison.Ordinal)) return text;
        var bytes = System.Text.Encoding.Latin1.GetBytes(text);
        return System.Text.Encoding.GetEncoding("iso-2022-jp").GetString(bytes);
    }

    private static string? Sender(MimeMessage message) => message.From.Mailboxes.FirstOrDefault()?.Address;

    private static bool IsFromDaemon(MimeMessage message) => message.From.Mailboxes.Any(m => IsDaemonAddress(m.Address));

    private static bool IsDaemonAddress(string address) => DaemonAddress().IsMatch(address);

    private static string? NullIfEmpty(this string? s) => string.IsNullOrEmpty(s) ? null : s;

    [GeneratedRegex(@"\b[245]\.\d{1,3}\.\d{1,3}\b")]
    internal static partial Regex StatusCode();

    [GeneratedRegex(@"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")]
    internal static partial Regex AddressPattern();

    [GeneratedRegex(@"^(mailer-daemon|postmaster|mail-daemon|mailer|maildaemon|daemon|bounce[s]?|noreply|no-reply|root|nobody|double-bounce)[@+]", RegexOptions.IgnoreCase)]
    private static partial Regex DaemonAddress();

    [GeneratedRegex(@"\b(complaint|abuse report|spam report|reported as spam)\b", RegexOptions.IgnoreCase)]
    private static partial Regex ComplaintSubject();

    [GeneratedRegex(@"^Final-Recipient:", RegexOptions.IgnoreCase | RegexOptions.Multiline)]
    private static partial Regex FinalRecipientLine();

    [GeneratedRegex(@"^Feedback-Type:", RegexOptions.IgnoreCase | RegexOptions.Multiline)]
    private static partial Regex FeedbackTypeLine();

    [GeneratedRegex(@"^(out of (the )?office|automatic reply|auto(matic)?[ -]?(reply|response)|auto:|autoreply|vacation|abwesenheit|absence|自動応答|不在)", RegexOptions.IgnoreCase)]
    private static partial Regex AutoReplySubject();

    [GeneratedRegex(@"(undeliver|delivery (status|failure|has failed|notification)|returned mail|mail delivery|failure notice|non[- ]?delivery|delivery problem|could not be delivered|nicht zustellbar|message not delivered|mail system error|warning: could not send|rejected)", RegexOptions.IgnoreCase)]
    private static partial Regex BounceSubject();

    [GeneratedRegex(@"^(-+ ?(Below this line is a copy of the message|This is a copy of the message|Original message|Original Message|The header of the original message|Forwarded message|Returned message|Message header follows|Undelivered message headers follow|original message follows)|Original message follows|\s*-+\s*original message\s*-+|Received: from |Return-Path: <)",
        RegexOptions.IgnoreCase | RegexOptions.Multiline)]
    private static partial Regex OriginalMarker();

    [GeneratedRegex(@"^Message-ID:\s*(<[^>\s]+>)", RegexOptions.IgnoreCase | RegexOptions.Multiline)]
    private static partial Regex OriginalMessageIdLine();

    [GeneratedRegex(@"<[^>]*>")]
    private static partial Regex HtmlTag();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    /// <summary>What precedes an address that is the sender or a help desk, not a failed recipient.</summary>
    [GeneratedRegex(@"(\bcontact|\bfrom:|\bsender:|\breply-to:|\bcc:)[ \t]*<?$", RegexOptions.IgnoreCase)]
    private static partial Regex NotARecipient();
}
