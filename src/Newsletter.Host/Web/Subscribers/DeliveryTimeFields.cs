using System.Globalization;
using Newsletter.Configuration;
using Newsletter.Subscribers;

namespace Newsletter.Web;

/// <summary>
/// The delivery-time fields of the sign-up and preferences forms: a time zone from a list grouped
/// by region (a select: browsers search it as one types), the hour in the reader's language, and the
/// weekday of the weekly digest. When the zone shown is only the configured default, a small script
/// replaces it with the browser's own zone; without the script the form works the same.
/// </summary>
public sealed class DeliveryTimeFields
{
    public required PageStrings S { get; init; }

    public required string TimeZone { get; init; }

    public required int Hour { get; init; }

    public required DayOfWeek Weekday { get; init; }

    /// <summary>True when the zone is the configured default rather than the reader's choice: the browser's zone may replace it.</summary>
    public bool PrefillFromBrowser { get; init; }

    public string? ErrorField { get; init; }

    /// <summary>The weekdays as the form lists them, Monday first.</summary>
    public static IReadOnlyList<DayOfWeek> Weekdays { get; } =
        [DayOfWeek.Monday, DayOfWeek.Tuesday, DayOfWeek.Wednesday, DayOfWeek.Thursday, DayOfWeek.Friday, DayOfWeek.Saturday, DayOfWeek.Sunday];

    /// <summary>The zones the list offers, by region: every IANA zone of the system's database under a continent or ocean, and UTC.</summary>
    public static IReadOnlyList<(string Region, IReadOnlyList<(string Id, string City)> Zones)> Regions { get; } = ReadRegions();

    public static DeliveryTimeFields For(PageStrings s, ScheduleOptions defaults, DeliveryTime? chosen, string? errorField = null) => new()
    {
        S = s,
        TimeZone = chosen?.TimeZone ?? defaults.TimeZone,
        Hour = chosen?.Hour ?? defaults.DeliveryHour,
        Weekday = chosen?.WeeklyDay ?? defaults.WeeklyDay,
        PrefillFromBrowser = chosen?.TimeZone is null && errorField is null,
        ErrorField = errorField,
    };

    /// <summary>The form's raw values as a partial choice (unreadable ones left out, to show the form again).</summary>
    public static DeliveryTime Lenient(string? zone, string? hour, string? weekday)
    {
        string? z = null; int? h = null; DayOfWeek? d = null;
        try { z = DeliveryTime.Zone("time_zone", zone); } catch (Validation.InputException) { }
        try { h = DeliveryTime.HourOf("hour", hour); } catch (Validation.InputException) { }
        try { d = DeliveryTime.Weekday("weekday", weekday); } catch (Validation.InputException) { }
        return new DeliveryTime(z, h, d);
    }

    public string Offset(string id)
    {
        var offset = TimeZoneInfo.FindSystemTimeZoneById(id).GetUtcOffset(DateTimeOffset.UtcNow);
        return "UTC" + (offset < TimeSpan.Zero ? "-" : "+") + offset.ToString(@"hh\:mm", CultureInfo.InvariantCulture);
    }

    private static IReadOnlyList<(string, IReadOnlyList<(string, string)>)> ReadRegions()
    {
        string[] continents = ["Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific"];
        var ids = TimeZoneInfo.GetSystemTimeZones().Select(z => z.Id).Where(id => id.Contains('/')).ToHashSet(StringComparer.Ordinal);
        var regions = continents
            .Select(region => (region, (IReadOnlyList<(string, string)>)ids.Where(id => id.StartsWith(region + "/", StringComparison.Ordinal))
                .Select(id => (id, id[(region.Length + 1)..].Replace('_', ' ').Replace("/", " / ", StringComparison.Ordinal)))
                .OrderBy(z => z.Item2, StringComparer.Ordinal).ToList()))
            .Where(r => r.Item2.Count > 0)
            .ToList();
        regions.Add(("UTC", [("UTC", "UTC")]));
        return regions;
    }
}
