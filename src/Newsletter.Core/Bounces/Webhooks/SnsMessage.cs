using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Newsletter.Validation;

namespace Newsletter.Bounces.Webhooks;

/// <summary>
/// An Amazon SNS message posted to an HTTP endpoint (a notification, or the confirmation of a
/// subscription), and the check of its signature: SignatureVersion 1 (RSA with SHA-1) or 2 (RSA with
/// SHA-256) over the fields AWS lists for the message type, in their fixed order.
/// </summary>
public sealed record SnsMessage(string Type, string MessageId, string TopicArn, string Message, string Timestamp,
    string SignatureVersion, string Signature, string? Subject, string? Token, string? SubscribeUrl)
{
    public const string Notification = "Notification";
    public const string SubscriptionConfirmation = "SubscriptionConfirmation";
    public const string UnsubscribeConfirmation = "UnsubscribeConfirmation";

    public static SnsMessage Read(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new InputException("body", "must be a JSON object (an Amazon SNS message)");
        string Required(string name) => Text(root, name) ?? throw new InputException(name, "is required in an Amazon SNS message");
        var type = Required("Type");
        if (type is not (Notification or SubscriptionConfirmation or UnsubscribeConfirmation))
            throw new InputException("Type", $"must be {Notification}, {SubscriptionConfirmation} or {UnsubscribeConfirmation}");
        var confirmation = type != Notification;
        return new SnsMessage(type, Required("MessageId"), Required("TopicArn"), Required("Message"), Required("Timestamp"),
            Required("SignatureVersion"), Required("Signature"), Text(root, "Subject"),
            confirmation ? Required("Token") : null, confirmation ? Required("SubscribeURL") : null);
    }

    /// <summary>When SNS sent it (the signed <c>Timestamp</c>).</summary>
    public DateTimeOffset SentAt => DateTimeOffset.TryParse(Timestamp, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
        ? at : throw new InputException("Timestamp", "must be an ISO 8601 time");

    /// <summary>True when one of <paramref name="certificates"/> signed exactly this message.</summary>
    public bool IsSignedBy(IEnumerable<X509Certificate2> certificates)
    {
        var hash = SignatureVersion switch
        {
            "1" => HashAlgorithmName.SHA1,
            "2" => HashAlgorithmName.SHA256,
            _ => (HashAlgorithmName?)null,
        };
        if (hash is null) return false;
        byte[] signature;
        try { signature = Convert.FromBase64String(Signature); }
        catch (FormatException) { return false; }
        var signed = Encoding.UTF8.GetBytes(StringToSign());
        foreach (var certificate in certificates)
        {
            using var rsa = certificate.GetRSAPublicKey();
            if (rsa is not null && rsa.VerifyData(signed, signature, hash.Value, RSASignaturePadding.Pkcs1)) return true;
        }
        return false;
    }

    /// <summary>The bytes SNS signs: "name\nvalue\n" for each field of the message type, in AWS's order.</summary>
    public string StringToSign()
    {
        var fields = Type == Notification
            ? new (string, string?)[] { ("Message", Message), ("MessageId", MessageId), ("Subject", Subject), ("Timestamp", Timestamp), ("TopicArn", TopicArn), ("Type", Type) }
            : [("Message", Message), ("MessageId", MessageId), ("SubscribeURL", SubscribeUrl), ("Timestamp", Timestamp), ("Token", Token), ("TopicArn", TopicArn), ("Type", Type)];
        var text = new StringBuilder();
        foreach (var (name, value) in fields)
            if (value is not null) text.Append(name).Append('\n').Append(value).Append('\n');
        return text.ToString();
    }

    private static string? Text(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
