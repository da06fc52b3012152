using System.Text.RegularExpressions;
using Newsletter.Validation;

namespace Newsletter.Subscribers;

/// <summary>
/// When a reader wants their digest: a time zone (IANA name), an hour of their local day (0-23) and,
/// for weekly readers, a weekday. A null field means the configured default
/// (<c>Newsletter__Schedule__TimeZone</c>, <c>__DeliveryHour</c>, <c>__WeeklyDay</c>).
/// </summary>
public sealed partial record DeliveryTime(string? TimeZone, int? Hour, DayOfWeek? WeeklyDay)
{
    public static readonly DeliveryTime Default = new(null, null, null);

    public const string TimeZoneField = "time_zone";
    public const string HourField = "hour";
    public const string WeekdayField = "weekday";

    /// <summary>Validates raw input (null or empty: the default); every rule names its field.</summary>
    /// <exception cref="InputException">A value breaks a rule.</exception>
    public static DeliveryTime Parse(string? timeZone, string? hour, string? weekday, string zoneField = TimeZoneField, string hourField = HourField,
        string weekdayField = WeekdayField) =>
        new(Zone(zoneField, timeZone), HourOf(hourField, hour), Weekday(weekdayField, weekday));

    /// <summary>An IANA zone name as the system's time-zone database spells it, or null for none.</summary>
    public static string? Zone(string field, string? value)
    {
        var text = value?.Trim();
        if (string.IsNullOrEmpty(text)) return null;
        if (text.Length > 64 || !IanaName().IsMatch(text) || !TimeZoneInfo.TryFindSystemTimeZoneById(text, out var zone))
            throw new InputException(field, $"must be an IANA time zone such as Asia/Seoul or America/New_York (got '{TextRules.Shorten(text)}')", InputRule.NotOneOf);
        return zone.Id;
    }

    public static int? HourOf(string field, string? value)
    {
        var text = value?.Trim();
        if (string.IsNullOrEmpty(text)) return null;
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var hour) || hour > 23)
            throw new InputException(field, $"must be an hour from 0 to 23 (got '{TextRules.Shorten(text)}')", InputRule.NotOneOf);
        return hour;
    }

    public static DayOfWeek? Weekday(string field, string? value)
    {
        var text = value?.Trim().ToLowerInvariant();
        if (string.IsNullOrEmpty(text)) return null;
        foreach (var day in Enum.GetValues<DayOfWeek>())
        {
            var name = WeekdayName(day);
            if (text == name || text == name[..3]) return day;
        }
        throw new InputException(field, $"must be a weekday: monday, tuesday, ..., sunday (got '{TextRules.Shorten(value!)}')", InputRule.NotOneOf);
    }

    /// <summary>The wire word of a weekday: <c>monday</c> ... <c>sunday</c>.</summary>
    public static string WeekdayName(DayOfWeek day) => day.ToString().ToLowerInvariant();

    [GeneratedRegex(@"\A(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})\z")]
    private static partial Regex IanaName();
}
