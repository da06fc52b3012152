namespace Newsletter.Configuration;

/// <summary>
/// The <c>Newsletter:Webhooks</c> section: bounce and complaint events posted by a sending provider
/// to <c>POST /webhooks/{provider}</c>. Each provider is off until its credentials are set.
/// </summary>
public sealed class WebhookOptions
{
    public const string Section = "Newsletter:Webhooks";

    /// <summary>
    /// How old a signed timestamp (Amazon SNS, Mailgun) may be: an older call is refused with 409 as
    /// a replay. Event ids are remembered for 30 days, so the same call within that time is a 409 too.
    /// </summary>
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Largest request body taken, in bytes (bigger ones get 413).</summary>
    public int MaxBodyBytes { get; set; } = 1024 * 1024;
}

/// <summary>
/// The <c>Newsletter:Webhooks:Ses</c> section: Amazon SES notifications delivered by Amazon SNS to
/// <c>POST /webhooks/ses</c>, each checked against the SNS signing certificate.
/// </summary>
public sealed class SesWebhookOptions
{
    public const string Section = "Newsletter:Webhooks:Ses";

    /// <summary>
    /// Path to the SNS signing certificate (PEM, as downloaded from the <c>SigningCertURL</c> of a
    /// notification, e.g. <c>https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-….pem</c>).
    /// The file may hold several certificates (during a rotation); a message signed by any of them is
    /// taken. Unset: the SES webhook answers 404.
    /// </summary>
    public string? Certificate { get; set; }

    /// <summary>The SNS topic ARNs whose messages are taken, separated by commas (anyone can make SNS sign a message of their own topic).</summary>
    public string? TopicArn { get; set; }
}

/// <summary>The <c>Newsletter:Webhooks:Postmark</c> section: Postmark bounce and spam-complaint webhooks, authenticated by HTTP basic auth.</summary>
public sealed class PostmarkWebhookOptions
{
    public const string Section = "Newsletter:Webhooks:Postmark";

    /// <summary>The basic-auth user name set in the webhook's URL at Postmark. Unset: the Postmark webhook answers 404.</summary>
    public string? Username { get; set; }

    public string? Password { get; set; }
}

/// <summary>The <c>Newsletter:Webhooks:Mailgun</c> section: Mailgun event webhooks, authenticated by their HMAC signature.</summary>
public sealed class MailgunWebhookOptions
{
    public const string Section = "Newsletter:Webhooks:Mailgun";

    /// <summary>The HTTP webhook signing key from Mailgun's control panel. Unset: the Mailgun webhook answers 404.</summary>
    public string? SigningKey { get; set; }
}
