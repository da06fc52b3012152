using Newsletter.Validation;

namespace Newsletter.Subscribers;

/// <summary>How often a subscriber gets mail: weekly (the default) or daily.</summary>
public enum Cadence { Weekly, Daily }

/// <summary>Which language(s) a subscriber reads: Korean, English, or both (Korean first, as in the source digest).</summary>
public enum Language { Ko, En, Both }

public enum SubscriberStatus { Pending, Active, Unsubscribed, Bounced, Complained }

/// <summary>Converts the enums to and from the lower-case words used in the database, the API and the CLI.</summary>
public static class Wire
{
    public static string Name<T>(T value) where T : struct, Enum => value.ToString().ToLowerInvariant();

    public static T Parse<T>(string field, string? value) where T : struct, Enum
    {
        var allowed = Enum.GetValues<T>().Select(Name).ToArray();
        var text = value?.Trim();
        if (text is not null && allowed.Contains(text, StringComparer.Ordinal))
            return Enum.Parse<T>(text, ignoreCase: true);
        throw new InputException(field, $"must be one of {string.Join(", ", allowed)} (got '{TextRules.Shorten(value ?? "")}')", InputRule.NotOneOf);
    }
}

/// <summary>One person on the list.</summary>
public sealed class Subscriber
{
    public long Id { get; init; }

    /// <summary>Random identifier used in signed links; never the serial <see cref="Id"/>.</summary>
    public Guid PublicId { get; init; }

    public required string Email { get; init; }

    public string? Name { get; init; }

    public Cadence Cadence { get; init; }

    public Language Language { get; init; }

    /// <summary>The reader's IANA time zone; null: the configured default.</summary>
    public string? TimeZone { get; init; }

    /// <summary>The reader's local delivery hour (0-23); null: the configured default.</summary>
    public int? DeliveryHour { get; init; }

    /// <summary>A weekly reader's weekday; null: the configured default.</summary>
    public DayOfWeek? WeeklyDay { get; init; }

    public DeliveryTime Time => new(TimeZone, DeliveryHour, WeeklyDay);

    /// <summary>The reader lets their clicks be counted (the default); off, their digests carry the plain links.</summary>
    public bool ClickTracking { get; init; } = true;

    public SubscriberStatus Status { get; init; }

    public DateTime CreatedAt { get; init; }

    public DateTime? ConfirmedAt { get; init; }

    public DateTime? UnsubscribedAt { get; init; }
}

/// <summary>A validated request to add a subscriber.</summary>
public sealed record NewSubscriber(string Email, string? Name, Cadence Cadence, Language Language, DeliveryTime? Time = null)
{
    /// <summary>Validates raw input; every rule names its field.</summary>
    /// <exception cref="InputException">A value breaks a rule.</exception>
    public static NewSubscriber Create(string? email, string? name, string? cadence, string? language, DeliveryTime? time = null) => new(
        EmailAddress.Parse("email", email),
        NameOrNull(name),
        cadence is null ? Cadence.Weekly : Wire.Parse<Cadence>("cadence", cadence),
        language is null ? Language.Ko : Wire.Parse<Language>("language", language),
        time);

    internal static string? NameOrNull(string? name) =>
        TextRules.SingleLine("name", name, TextRules.MaxNameLength, required: false) is { Length: > 0 } n ? n : null;
}
