namespace Newsletter.Configuration;

/// <summary>The <c>Newsletter:Bounces</c> section: bounces and complaints that come back after the handoff.</summary>
public sealed class BounceOptions
{
    public const string Section = "Newsletter:Bounces";

    /// <summary>
    /// The domain of the per-delivery return path: with it set, every digest's envelope sender is
    /// <c>bounces+{id}-{mac}@{Domain}</c> (its MX, or a transport of the MTA, must bring mail for it to
    /// the service). Unset: the envelope sender is <c>Newsletter__Smtp__ReturnPath</c> or the From address.
    /// </summary>
    public string? Domain { get; set; }

    /// <summary>
    /// Where the service takes bounces by SMTP (<c>host:port</c>, e.g. <c>127.0.0.1:2526</c>), for an MTA
    /// that hands mail for <see cref="Domain"/> straight in. Unset: no SMTP endpoint.
    /// </summary>
    public string? Listen { get; set; }

    /// <summary>Largest report the SMTP endpoint accepts, in bytes (bigger ones are refused with 552).</summary>
    public int MaxMessageBytes { get; set; } = 10 * 1024 * 1024;

    /// <summary>Reports one client address may hand the SMTP endpoint per minute (more are refused with 421, and the MTA retries later).</summary>
    public int MessagesPerMinute { get; set; } = 600;

    /// <summary>
    /// The share of a run's sent messages that receivers may refuse because of the sender (blocks:
    /// reputation, spam filters, authentication, rate) before the run pauses with the reason, so an
    /// operator looks before the rest of the list is burnt (0: never pause).
    /// </summary>
    public double BlockRatePause { get; set; } = 0.02;

    /// <summary>Blocks a run must have before <see cref="BlockRatePause"/> applies (a few blocks of a small run say little).</summary>
    public int BlockMinimum { get; set; } = 20;

    /// <summary>Soft bounces (a full mailbox, a suspended account) within <see cref="SoftWindow"/> after which the subscriber is suppressed.</summary>
    public int SoftLimit { get; set; } = 3;

    /// <summary>The window over which soft bounces are counted: a subscriber without one for this long starts again from zero.</summary>
    public TimeSpan SoftWindow { get; set; } = TimeSpan.FromDays(30);
}
