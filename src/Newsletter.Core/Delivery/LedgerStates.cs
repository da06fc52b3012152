namespace Newsletter.Delivery;

/// <summary>Where one delivery (one message to one subscriber in one run) stands.</summary>
public enum DeliveryStatus
{
    /// <summary>Waiting for a worker (also after a claim was given back).</summary>
    Queued,
    /// <summary>Taken by a worker under a lease; nothing sent yet.</summary>
    Claimed,
    /// <summary>Handed to SMTP; if the worker dies now, the delivery becomes uncertain.</summary>
    Sending,
    Sent,
    /// <summary>A temporary failure; queued again at its next attempt time.</summary>
    Retrying,
    Failed,
    /// <summary>The connection was lost after the end of DATA: the server may have the message. Never resent on its own.</summary>
    Uncertain,
    /// <summary>Not sent: the run was cancelled, or the subscriber left; its issues went back to them.</summary>
    Cancelled,
    /// <summary>Nothing left to send: every issue of it went out in another run.</summary>
    Skipped,
}

/// <summary>
/// The one mapping of delivery and run states to the words stored in the database and shown by
/// the API and the CLI, and the sets of states the rules of the ledger speak of. SQL takes these
/// words from here (<see cref="Sql(DeliveryStatus[])"/>), never spelled out again.
/// </summary>
public static class LedgerStates
{
    public static string Name(DeliveryStatus status) => status switch
    {
        DeliveryStatus.Queued => "queued",
        DeliveryStatus.Claimed => "claimed",
        DeliveryStatus.Sending => "sending",
        DeliveryStatus.Sent => "sent",
        DeliveryStatus.Retrying => "retrying",
        DeliveryStatus.Failed => "failed",
        DeliveryStatus.Uncertain => "uncertain",
        DeliveryStatus.Cancelled => "cancelled",
        DeliveryStatus.Skipped => "skipped",
        _ => throw new ArgumentOutOfRangeException(nameof(status)),
    };

    public static string Name(RunStatus status) => status switch
    {
        RunStatus.Sending => "sending",
        RunStatus.Paused => "paused",
        RunStatus.Done => "done",
        RunStatus.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(status)),
    };

    public static bool TryParse(string? text, out DeliveryStatus status)
    {
        foreach (var s in Enum.GetValues<DeliveryStatus>())
            if (Name(s) == text) { status = s; return true; }
        status = default;
        return false;
    }

    public static RunStatus ParseRun(string text)
    {
        foreach (var s in Enum.GetValues<RunStatus>())
            if (Name(s) == text) return s;
        throw new ArgumentOutOfRangeException(nameof(text), text, "not a run state");
    }

    /// <summary>Deliveries not yet settled: a run is done when none of its deliveries is in one of these.</summary>
    public static readonly DeliveryStatus[] Open = [DeliveryStatus.Queued, DeliveryStatus.Claimed, DeliveryStatus.Sending, DeliveryStatus.Retrying];

    /// <summary>Deliveries that can still be stopped before anything reaches SMTP.</summary>
    public static readonly DeliveryStatus[] Unstarted = [DeliveryStatus.Queued, DeliveryStatus.Claimed, DeliveryStatus.Retrying];

    /// <summary>Deliveries a worker may claim.</summary>
    public static readonly DeliveryStatus[] Due = [DeliveryStatus.Queued, DeliveryStatus.Retrying];

    /// <summary>Runs that are still going (sending or paused).</summary>
    public static readonly RunStatus[] OpenRuns = [RunStatus.Sending, RunStatus.Paused];

    /// <summary>SQL literals for a <c>status in (...)</c> or a comparison: <c>'queued', 'retrying'</c>.</summary>
    public static string Sql(params DeliveryStatus[] states) => string.Join(", ", states.Select(s => $"'{Name(s)}'"));

    /// <inheritdoc cref="Sql(DeliveryStatus[])"/>
    public static string Sql(params RunStatus[] states) => string.Join(", ", states.Select(s => $"'{Name(s)}'"));
}
