using System.Text.Json;
using Newsletter.Validation;

namespace Newsletter.Bounces.Webhooks;

/// <summary>
/// One recipient's outcome as a provider reported it, and the keys that may tie it to a delivery of
/// ours (our Message-ID, our VERP return path, or the same Message-ID passed back as metadata). Like a
/// report by mail, it counts only when a key's MAC is right and the recipient is that delivery's.
/// </summary>
public sealed record ProviderEvent(BounceVerdict Verdict, IReadOnlyList<string> Keys);

/// <summary>
/// Reads the bounce and complaint events of Amazon SES, Postmark and Mailgun into verdicts. The
/// provider's own words (the receiver's diagnostic) go through the same classifier as a DSN, so a
/// "permanent" bounce that is a spam block is a <see cref="BounceKind.Block"/> here too; the
/// provider's category decides only where the words say nothing.
/// </summary>
public static class ProviderEvents
{
    /// <summary>The header a digest carries when Postmark webhooks are set, which Postmark passes back as <c>Metadata</c>.</summary>
    public const string PostmarkMetadataHeader = "X-PM-Metadata-newsletter-delivery";
    public const string PostmarkMetadataKey = "newsletter-delivery";

    // ---- Amazon SES (the Message of an SNS notification) ---------------------------------------

    public static IReadOnlyList<ProviderEvent> Ses(JsonElement notification)
    {
        if (notification.ValueKind != JsonValueKind.Object) throw new InputException("Message", "must be a JSON object (an SES notification)");
        var type = Text(notification, "notificationType") ?? Text(notification, "eventType");
        var keys = new List<string>();
        if (notification.TryGetProperty("mail", out var mail) && mail.ValueKind == JsonValueKind.Object)
        {
            if (mail.TryGetProperty("commonHeaders", out var common) && Text(common, "messageId") is { } commonId) keys.Add(commonId);
            if (mail.TryGetProperty("headers", out var headers) && headers.ValueKind == JsonValueKind.Array)
                foreach (var h in headers.EnumerateArray().Take(200))
                    if (Text(h, "name") is { } name && (name.Equals("Message-ID", StringComparison.OrdinalIgnoreCase) || name.Equals("Return-Path", StringComparison.OrdinalIgnoreCase))
                        && Text(h, "value") is { } value)
                        keys.Add(value);
            if (Text(mail, "source") is { } source) keys.Add(source);
        }
        switch (type)
        {
            case "Bounce":
                var bounce = Object(notification, "bounce");
                var bounceType = Text(bounce, "bounceType") ?? "Undetermined";
                var subType = Text(bounce, "bounceSubType") ?? "";
                return Recipients(bounce, "bouncedRecipients").Select(r =>
                {
                    var email = Text(r, "emailAddress");
                    return new ProviderEvent(SesVerdict(email, bounceType, subType, Text(r, "status"), Text(r, "diagnosticCode")), keys);
                }).ToList();
            case "Complaint":
                var complaint = Object(notification, "complaint");
                // "not-spam": the reader took the message out of the spam folder.
                var notSpam = Text(complaint, "complaintFeedbackType") == "not-spam";
                return Recipients(complaint, "complainedRecipients").Select(r => new ProviderEvent(new BounceVerdict(Text(r, "emailAddress"), null, null,
                    notSpam ? BounceKind.NotABounce : BounceKind.Complaint, notSpam ? "not-spam" : Text(complaint, "complaintFeedbackType") ?? "abuse", null), keys)).ToList();
            default:
                return []; // deliveries, opens, clicks, delays, sends: nothing to do
        }
    }

    private static BounceVerdict SesVerdict(string? email, string bounceType, string subType, string? status, string? diagnostic)
    {
        if (subType is "Suppressed" or "OnAccountSuppressionList")
            return new BounceVerdict(email, status, null, BounceKind.Hard, "suppressed", Shorten(diagnostic));
        var transient = bounceType != "Permanent";
        if (!string.IsNullOrWhiteSpace(diagnostic))
        {
            var verdict = BounceClassifier.Classify(email, status, diagnostic, "", delayed: transient);
            if (verdict.Reason != BounceClassifier.Undefined) return verdict;
        }
        var (kind, reason) = (bounceType, subType) switch
        {
            ("Permanent", "MailboxFull") => (BounceKind.Soft, "mailboxfull"),
            ("Permanent", "MessageTooLarge") => (BounceKind.Soft, "mesgtoobig"),
            ("Permanent", "ContentRejected" or "AttachmentRejected") => (BounceKind.Block, "contenterror"),
            ("Permanent", _) => (BounceKind.Hard, "userunknown"),
            ("Transient", "MailboxFull") => (BounceKind.Soft, "mailboxfull"),
            ("Transient", "ContentRejected" or "AttachmentRejected") => (BounceKind.Block, "contenterror"),
            _ => (BounceKind.Soft, BounceClassifier.Undefined),
        };
        return new BounceVerdict(email, status, null, kind, reason, Shorten(diagnostic));
    }

    // ---- Postmark -------------------------------------------------------------------------------

    public static (string EventId, IReadOnlyList<ProviderEvent> Events) Postmark(JsonElement record)
    {
        if (record.ValueKind != JsonValueKind.Object) throw new InputException("body", "must be a JSON object (a Postmark webhook record)");
        var recordType = Text(record, "RecordType") ?? throw new InputException("RecordType", "is required");
        var id = record.TryGetProperty("ID", out var idElement) && idElement.ValueKind is JsonValueKind.Number or JsonValueKind.String ? idElement.ToString() : null;
        var eventId = $"{recordType}:{id ?? Text(record, "MessageID") ?? ""}:{Text(record, "BouncedAt") ?? Text(record, "ReceivedAt") ?? ""}";
        var keys = new List<string>();
        if (record.TryGetProperty("Metadata", out var metadata) && metadata.ValueKind == JsonValueKind.Object && Text(metadata, PostmarkMetadataKey) is { } key)
            keys.Add(key);
        var email = Text(record, "Email") ?? Text(record, "Recipient");
        if (recordType is not ("Bounce" or "SpamComplaint")) return (eventId, []);
        var type = Text(record, "Type") ?? (recordType == "SpamComplaint" ? "SpamComplaint" : "Unknown");
        var details = Text(record, "Details") is { Length: > 0 } d && d != "Test bounce details" ? d : null;
        var description = Text(record, "Description");
        BounceVerdict verdict;
        switch (type)
        {
            case "SpamComplaint":
                verdict = new BounceVerdict(email, null, null, BounceKind.Complaint, "abuse", null);
                break;
            case "HardBounce" or "BadEmailAddress" or "SoftBounce" or "Transient" or "DnsError":
                var soft = type is "SoftBounce" or "Transient";
                verdict = details is null ? new BounceVerdict(email, null, null, BounceKind.Soft, BounceClassifier.Undefined, Shorten(description))
                    : BounceClassifier.Classify(email, BounceParser.StatusCode().Match(details).Value is { Length: > 0 } s ? s : null, details, "", delayed: soft);
                if (verdict.Reason == BounceClassifier.Undefined)
                    verdict = verdict with
                    {
                        Kind = soft ? BounceKind.Soft : BounceKind.Hard,
                        Reason = type switch { "DnsError" => "hostunknown", "SoftBounce" or "Transient" => "expired", _ => "userunknown" },
                    };
                break;
            case "Blocked" or "SpamNotification" or "VirusNotification" or "DMARCPolicy" or "ChallengeVerification":
                verdict = new BounceVerdict(email, null, null, BounceKind.Block, type.ToLowerInvariant(), Shorten(details ?? description));
                break;
            case "AutoResponder":
                verdict = new BounceVerdict(email, null, null, BounceKind.AutoReply, "vacation", null);
                break;
            default:
                verdict = new BounceVerdict(email, null, null, BounceKind.NotABounce, type.ToLowerInvariant(), null);
                break;
        }
        return (eventId, [new ProviderEvent(verdict, keys)]);
    }

    // ---- Mailgun --------------------------------------------------------------------------------

    /// <summary>The <c>signature</c> object of a Mailgun webhook: what its HMAC covers.</summary>
    public sealed record MailgunSignature(string Timestamp, string Token, string Signature);

    public static (MailgunSignature Signature, IReadOnlyList<ProviderEvent> Events) Mailgun(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object) throw new InputException("body", "must be a JSON object (a Mailgun webhook)");
        var sig = Object(body, "signature");
        var signature = new MailgunSignature(
            Text(sig, "timestamp") ?? throw new InputException("signature.timestamp", "is required"),
            Text(sig, "token") ?? throw new InputException("signature.token", "is required"),
            Text(sig, "signature") ?? throw new InputException("signature.signature", "is required"));
        var data = Object(body, "event-data");
        var keys = new List<string>();
        if (data.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.Object
            && message.TryGetProperty("headers", out var headers) && Text(headers, "message-id") is { } messageId)
            keys.Add(messageId);
        if (data.TryGetProperty("user-variables", out var variables) && variables.ValueKind == JsonValueKind.Object && Text(variables, PostmarkMetadataKey) is { } key)
            keys.Add(key);
        var email = Text(data, "recipient");
        var reason = Text(data, "reason") ?? "";
        BounceVerdict? verdict = Text(data, "event") switch
        {
            "complained" => new BounceVerdict(email, null, null, BounceKind.Complaint, "abuse", null),
            "failed" when reason == "suppress-bounce" => new BounceVerdict(email, null, null, BounceKind.Hard, "suppressed", null),
            "failed" when reason == "suppress-complaint" => new BounceVerdict(email, null, null, BounceKind.Complaint, "suppressed", null),
            "failed" when reason == "suppress-unsubscribe" => new BounceVerdict(email, null, null, BounceKind.NotABounce, "unsubscribed", null),
            "failed" => MailgunFailure(email, data),
            _ => null,
        };
        return (signature, verdict is null ? [] : [new ProviderEvent(verdict, keys)]);
    }

    private static BounceVerdict MailgunFailure(string? email, JsonElement data)
    {
        var temporary = Text(data, "severity") != "permanent";
        string? status = null, words = null;
        if (data.TryGetProperty("delivery-status", out var ds) && ds.ValueKind == JsonValueKind.Object)
        {
            words = string.Join(" ", new[] { Text(ds, "message"), Text(ds, "description") }.Where(t => !string.IsNullOrWhiteSpace(t)));
            status = Text(ds, "enhanced-code") ?? (BounceParser.StatusCode().Match(words).Value is { Length: > 0 } s ? s : null);
            if (ds.TryGetProperty("code", out var code) && code.ValueKind == JsonValueKind.Number && !words.StartsWith(code.ToString(), StringComparison.Ordinal))
                words = $"{code} {words}";
        }
        return BounceClassifier.Classify(email, status, string.IsNullOrWhiteSpace(words) ? null : words, "", delayed: temporary);
    }

    // ---- helpers --------------------------------------------------------------------------------

    private static IEnumerable<JsonElement> Recipients(JsonElement parent, string name)
    {
        if (!parent.TryGetProperty(name, out var list) || list.ValueKind != JsonValueKind.Array)
            throw new InputException(name, "must be an array of recipients");
        // A report about thousands of recipients is not about one delivery of ours: the first
        // hundred are read, like a DSN's.
        return list.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.Object).Take(BounceParser.MaxRecipients);
    }

    private static JsonElement Object(JsonElement parent, string name) =>
        parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Object
            ? value : throw new InputException(name, "must be a JSON object");

    private static string? Text(JsonElement parent, string name) =>
        parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString() is { Length: > 0 and <= 2000 } s ? s : null
            : null;

    private static string? Shorten(string? text) => text is null ? null : text.Length <= 300 ? text : text[..300];
}
