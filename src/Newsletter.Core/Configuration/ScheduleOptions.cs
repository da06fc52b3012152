namespace Newsletter.Configuration;

/// <summary>
/// The <c>Newsletter:Schedule</c> section: when the daily and weekly digests go out. Each reader may
/// choose their own zone, hour and weekday; these are the defaults for readers who chose none.
/// </summary>
public sealed class ScheduleOptions
{
    public const string Section = "Newsletter:Schedule";

    /// <summary>IANA time zone of readers who chose none.</summary>
    public string TimeZone { get; set; } = "Asia/Seoul";

    /// <summary>Local hour (0-23) the digest goes out for readers who chose none.</summary>
    public int DeliveryHour { get; set; } = 8;

    /// <summary>Weekday of the weekly digest for weekly readers who chose none.</summary>
    public DayOfWeek WeeklyDay { get; set; } = DayOfWeek.Monday;

    /// <summary>A delivery time missed while no process ran is sent late if it is at most this old, otherwise skipped (its issues wait for the next digest).</summary>
    public TimeSpan MaxLateness { get; set; } = TimeSpan.FromHours(6);

    public TimeZoneInfo Zone => TimeZoneInfo.FindSystemTimeZoneById(TimeZone);

    public Newsletter.Scheduling.LocalDefaults Defaults => new(TimeZone, DeliveryHour, WeeklyDay);
}

/// <summary>The <c>Newsletter:Delivery</c> section: how queued deliveries are worked off.</summary>
public sealed class DeliveryOptions
{
    public const string Section = "Newsletter:Delivery";

    /// <summary>A new subscriber also gets the latest issue published before they became active.</summary>
    public bool BackfillLatest { get; set; } = true;

    /// <summary>Parallel SMTP connections (lanes) of one worker.</summary>
    public int Lanes { get; set; } = 4;

    /// <summary>
    /// Deliveries a lane marks 'sending' in one write before handing them to SMTP one after the
    /// other. A crash leaves at most this many uncertain deliveries per lane; larger windows
    /// write to PostgreSQL less often per message.
    /// </summary>
    public int SendingWindow { get; set; } = 1;

    /// <summary>Consecutive connection failures after which the run pauses instead of burning through the list.</summary>
    public int PauseAfterConsecutiveFailures { get; set; } = 20;

    /// <summary>At most this many messages per second from this process (0: no limit).</summary>
    public int MaxPerSecond { get; set; }

    /// <summary>At most this many messages per clock hour from this process (0: no limit).</summary>
    public int MaxPerHour { get; set; }

    /// <summary>Deliveries a worker claims at a time.</summary>
    public int BatchSize { get; set; } = 200;

    /// <summary>How long a claim lasts; a claim whose worker disappeared is taken over after it.</summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often an idle worker looks for due deliveries.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>First retry delay after a temporary failure; each further retry waits twice as long.</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>On SIGTERM: stop claiming, let messages in flight finish, release the rest, and exit within this time.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Attempts before a delivery that keeps failing is given up as failed.</summary>
    public int MaxAttempts { get; set; } = 5;
}
