namespace Newsletter.Bounces;

/// <summary>What a report says about one recipient, and so what the service does about it.</summary>
public enum BounceKind
{
    /// <summary>The address does not exist or will never accept mail (unknown user, unknown domain, moved).</summary>
    Hard,

    /// <summary>A temporary problem of the recipient (mailbox full, expired in the queue, suspended).</summary>
    Soft,

    /// <summary>The receiver refused the sender (reputation, policy, spam filter, authentication, PTR, rate): never the subscriber's fault.</summary>
    Block,

    /// <summary>An ARF abuse, fraud or opt-out report: the reader said "this is spam".</summary>
    Complaint,

    /// <summary>An RFC 3834 vacation or out-of-office answer: ignored.</summary>
    AutoReply,

    /// <summary>A delivery or relay notice, a DMARC report, anything else: ignored.</summary>
    NotABounce,
}

/// <summary>
/// One recipient of a report: the address, the enhanced status code (RFC 3463) and SMTP reply
/// code when the report gives them, the kind, a short reason (<c>userunknown</c>,
/// <c>mailboxfull</c>, <c>blocked</c>, ...) and the receiver's own words.
/// </summary>
public sealed record BounceVerdict(string? Recipient, string? Status, string? Reply, BounceKind Kind, string Reason, string? Diagnostic);

/// <summary>
/// What a bounce, complaint or auto-reply says: a verdict per recipient, and the keys that tie it to
/// the message we sent (the envelope recipient of the report, which carries the VERP token, and the
/// Message-ID of the original message when the report quotes it).
/// </summary>
public sealed record BounceReport(IReadOnlyList<BounceVerdict> Recipients, string? OriginalMessageId);

public static class BounceKinds
{
    public static string Name(BounceKind kind) => kind switch
    {
        BounceKind.AutoReply => "auto-reply",
        BounceKind.NotABounce => "not-a-bounce",
        _ => kind.ToString().ToLowerInvariant(),
    };
}
