using Newsletter.Subscribers;

namespace Newsletter.Delivery;

/// <summary>What a run sends: the daily or weekly digest, or one issue broadcast to everyone.</summary>
public enum RunKind { Daily, Weekly, Broadcast }

public enum RunStatus { Sending, Paused, Done, Cancelled }

/// <summary>A run and the counts of its deliveries by state.</summary>
public sealed class RunSummary
{
    public long Id { get; init; }

    public string Kind { get; init; } = "";

    public string Status { get; init; } = "";

    public string? Issue { get; init; }

    public DateTime? Period { get; init; }

    public string? PauseReason { get; init; }

    public int Total { get; init; }

    public int Queued { get; init; }

    public int Sent { get; init; }

    public int Retrying { get; init; }

    public int Failed { get; init; }

    public int Uncertain { get; init; }

    public int Cancelled { get; init; }

    public int Skipped { get; init; }

    public DateTime StartedAt { get; init; }

    public DateTime? FinishedAt { get; init; }

    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsOpen => Status is "sending" or "paused";

    public static RunKind KindOf(Cadence cadence) => cadence == Cadence.Daily ? RunKind.Daily : RunKind.Weekly;
}
