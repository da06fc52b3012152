using Newsletter.Subscribers;

namespace Newsletter.Delivery;

/// <summary>What a run sends: the daily or weekly digest, or one issue broadcast to everyone.</summary>
public enum RunKind { Daily, Weekly, Broadcast }

/// <summary>Where a run stands: sending (and its deliveries being worked off), paused, done or cancelled.</summary>
public enum RunStatus { Sending, Paused, Done, Cancelled }

/// <summary>A run and the counts of its deliveries by state.</summary>
public sealed class RunSummary
{
    public long Id { get; init; }

    public string Kind { get; init; } = "";

    /// <summary>The run's state as the API and the CLI show it (see <see cref="State"/>).</summary>
    public string Status { get; init; } = "";

    [System.Text.Json.Serialization.JsonIgnore]
    public RunStatus State => LedgerStates.ParseRun(Status);

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
    public bool IsOpen => LedgerStates.OpenRuns.Contains(State);

    public static RunKind KindOf(Cadence cadence) => cadence == Cadence.Daily ? RunKind.Daily : RunKind.Weekly;
}
