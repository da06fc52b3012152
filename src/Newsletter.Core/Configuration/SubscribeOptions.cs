namespace Newsletter.Configuration;

/// <summary>The <c>Newsletter:Subscribe</c> section: the sign-up pages.</summary>
public sealed class SubscribeOptions
{
    public const string Section = "Newsletter:Subscribe";

    /// <summary>At most one confirmation mail per address within this interval, however often the form is sent.</summary>
    public TimeSpan ConfirmationInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long a confirmation link stays valid.</summary>
    public TimeSpan ConfirmationLinkLifetime { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Form posts (sign-up, confirm, preferences) one client address may make per minute before it gets 429.</summary>
    public int RequestsPerMinute { get; set; } = 10;

    /// <summary>Largest accepted form body in bytes.</summary>
    public int MaxFormBytes { get; set; } = 16 * 1024;
}
