using Newsletter.Subscribers;

namespace Newsletter.Configuration;

/// <summary>What click tracking records.</summary>
public enum ClickTrackingMode
{
    /// <summary>Links go straight to their targets; nothing is counted.</summary>
    Off,

    /// <summary>Links go through <c>/r/{token}</c>; only counts are kept, never who clicked.</summary>
    Aggregate,

    /// <summary>As <see cref="Aggregate"/>, and which reader clicked which paper.</summary>
    PerSubscriber,
}

/// <summary>The <c>Newsletter:Tracking</c> section: which papers readers open.</summary>
public sealed class TrackingOptions
{
    public const string Section = "Newsletter:Tracking";

    /// <summary><c>off</c>, <c>aggregate</c> (the default) or <c>per-subscriber</c>.</summary>
    public string Clicks { get; set; } = "aggregate";

    /// <summary>How long each raw click request (time, agent, verdict) is kept for audit; after that only the counts remain.</summary>
    public TimeSpan KeepRequests { get; set; } = TimeSpan.FromDays(2);

    /// <summary>Requests to <c>/r/</c> one address may make per minute; more get 429 and are not counted.</summary>
    public int RequestsPerMinute { get; set; } = 120;

    public ClickTrackingMode Mode => ParseMode(Clicks) ?? ClickTrackingMode.Aggregate;

    /// <summary>The mode as it is configured: <c>off</c>, <c>aggregate</c> or <c>per-subscriber</c>.</summary>
    public static string Name(ClickTrackingMode mode) => mode == ClickTrackingMode.PerSubscriber ? "per-subscriber" : Wire.Name(mode);

    public static ClickTrackingMode? ParseMode(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "off" => ClickTrackingMode.Off,
        "aggregate" => ClickTrackingMode.Aggregate,
        "per-subscriber" => ClickTrackingMode.PerSubscriber,
        _ => null,
    };
}

/// <summary>The <c>Newsletter:Archive</c> section: the public issue pages.</summary>
public sealed class ArchiveOptions
{
    public const string Section = "Newsletter:Archive";

    /// <summary>Show "most read this week" (the papers with the most human clickers) on an issue's public page.</summary>
    public bool ShowMostRead { get; set; }
}
