using Newsletter.Subscribers;

namespace Newsletter.Scheduling;

/// <summary>
/// One hour of one local day (or of one weekday) in one time zone that has come due: the readers of
/// <see cref="Cadence"/> whose zone is <see cref="TimeZone"/> and whose hour is <see cref="Hour"/> (and,
/// weekly, whose weekday is <see cref="Weekday"/>) go into the run of <see cref="Period"/>.
/// </summary>
public sealed record DueSlot(Cadence Cadence, string TimeZone, int Hour, DayOfWeek? Weekday, DateOnly Period, DateTimeOffset DueAt);

/// <summary>
/// Local delivery times. A reader's digest is due when their local clock reaches their hour on their
/// local day: the first instant whose local time is at or after that hour. So an hour that does not
/// exist that day (clocks spring forward) comes due when the clocks jump past it, at the next hour,
/// and a repeated hour (clocks fall back) comes due once, at its first occurrence. Zones whose offset
/// is not whole hours (Asia/Kathmandu +5:45, America/St_Johns -3:30) come due within their hour.
/// </summary>
public static class LocalDelivery
{
    /// <summary>A daily run's period is the readers' local date; a weekly run's the Monday of their local week.</summary>
    public static DateOnly PeriodOf(Cadence cadence, DateOnly localDate) =>
        cadence == Cadence.Daily ? localDate : localDate.AddDays(-(((int)localDate.DayOfWeek + 6) % 7));

    /// <summary>
    /// When a run of <paramref name="period"/> may still get deliveries: until the last hour of its
    /// last local day has begun in the westernmost zone (UTC-12), with an hour to spare.
    /// </summary>
    public static DateTimeOffset SlicesUntil(Cadence cadence, DateOnly period)
    {
        var lastDay = cadence == Cadence.Daily ? period : period.AddDays(6);
        return new DateTimeOffset(lastDay.ToDateTime(new TimeOnly(23, 0)), TimeSpan.Zero).AddHours(12 + 1);
    }

    /// <summary>The instant <paramref name="hour"/> begins on <paramref name="date"/> in <paramref name="zone"/> (see the class).</summary>
    public static DateTimeOffset HourBegins(TimeZoneInfo zone, DateOnly date, int hour)
    {
        var local = date.ToDateTime(new TimeOnly(hour, 0));
        // In a gap (spring forward) the first later local time that exists is where the gap ends;
        // gaps are whole quarter hours.
        while (zone.IsInvalidTime(local)) local = local.AddMinutes(15);
        var offset = zone.IsAmbiguousTime(local) ? zone.GetAmbiguousTimeOffsets(local).Max() : zone.GetUtcOffset(local);
        return new DateTimeOffset(local, offset);
    }

    public static DateOnly LocalDate(TimeZoneInfo zone, DateTimeOffset instant) =>
        DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(instant, zone).DateTime);

    /// <summary>
    /// Every slot of <paramref name="zones"/> that comes due in (<paramref name="after"/>, <paramref name="until"/>]:
    /// for each zone, local day and hour whose beginning falls in the interval, a daily slot, and a
    /// weekly slot for that day's weekday.
    /// </summary>
    public static IReadOnlyList<DueSlot> DueBetween(IEnumerable<string> zones, DateTimeOffset after, DateTimeOffset until)
    {
        var slots = new List<DueSlot>();
        if (until <= after) return slots;
        foreach (var id in zones.Distinct(StringComparer.Ordinal))
        {
            var zone = TimeZoneInfo.FindSystemTimeZoneById(id);
            // Only the local hours around the interval can begin in it (an hour before its start for
            // a DST gap, one after its end); a short interval checks a handful, not three whole days.
            var from = TimeZoneInfo.ConvertTime(after, zone).DateTime.AddHours(-2);
            var to = TimeZoneInfo.ConvertTime(until, zone).DateTime.AddHours(2);
            for (var local = new DateTime(from.Year, from.Month, from.Day, from.Hour, 0, 0); local <= to; local = local.AddHours(1))
                {
                    var (date, hour) = (DateOnly.FromDateTime(local), local.Hour);
                    var due = HourBegins(zone, date, hour);
                    if (due <= after || due > until) continue;
                    slots.Add(new DueSlot(Cadence.Daily, id, hour, null, PeriodOf(Cadence.Daily, date), due));
                    slots.Add(new DueSlot(Cadence.Weekly, id, hour, date.DayOfWeek, PeriodOf(Cadence.Weekly, date), due));
                }
        }
        return slots;
    }
}

/// <summary>The delivery time of a reader who chose none: the configured zone, hour and weekday.</summary>
public sealed record LocalDefaults(string TimeZone, int Hour, DayOfWeek WeeklyDay);
