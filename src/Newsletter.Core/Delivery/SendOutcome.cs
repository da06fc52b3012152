namespace Newsletter.Delivery;

/// <summary>What one attempt at one message came to, by the SMTP failure taxonomy.</summary>
public enum SendResult
{
    /// <summary>The server accepted the message.</summary>
    Sent,

    /// <summary>A temporary problem before the end of DATA (4xx, a dropped connection): try again later.</summary>
    Retry,

    /// <summary>The server refused the mailbox for good (5.1.x, 5.2.1 on RCPT): the subscriber has bounced.</summary>
    Bounced,

    /// <summary>This message was refused for good, for a reason that is not the mailbox's.</summary>
    Failed,

    /// <summary>The connection was lost after the end of DATA: the server may have queued it, so it is not resent automatically.</summary>
    Uncertain,

    /// <summary>The operator's problem (policy 5.7.x, refused sender, AUTH or TLS failure, the server unreachable again and again): pause the run.</summary>
    PauseRun,
}

public readonly record struct SendOutcome(SendResult Result, string? Reply = null)
{
    /// <summary>The connection itself failed (not a reply): counted towards pausing the run.</summary>
    public bool ConnectionFailure { get; init; }

    public static SendOutcome Sent { get; } = new(SendResult.Sent);
}
