using Newsletter.Scheduling;
using Newsletter.Subscribers;

namespace Newsletter.Tests.Scheduling;

/// <summary>When a reader's local hour comes due, across DST changes, odd offsets and the date line.</summary>
public sealed class LocalDeliveryTests
{
    private static DateTimeOffset Utc(int month, int day, int hour, int minute = 0) => new(2026, month, day, hour, minute, 0, TimeSpan.Zero);

    [Theory]
    // Spring forward: 02:00 does not exist; hour 2 comes due with hour 3.
    [InlineData("America/New_York", 3, 8, 1, 3, 8, 6, 0)]
    [InlineData("America/New_York", 3, 8, 2, 3, 8, 7, 0)]
    [InlineData("America/New_York", 3, 8, 3, 3, 8, 7, 0)]
    [InlineData("Europe/Berlin", 3, 29, 2, 3, 29, 1, 0)]
    // Fall back: the repeated hour comes due at its first occurrence.
    [InlineData("America/New_York", 11, 1, 1, 11, 1, 5, 0)]
    [InlineData("America/New_York", 11, 1, 2, 11, 1, 7, 0)]
    [InlineData("Europe/Berlin", 10, 25, 2, 10, 25, 0, 0)]
    // Offsets that are not whole hours, and both sides of the date line.
    [InlineData("Asia/Kathmandu", 12, 4, 8, 12, 4, 2, 15)]
    [InlineData("Asia/Kolkata", 12, 4, 8, 12, 4, 2, 30)]
    [InlineData("America/St_Johns", 12, 4, 8, 12, 4, 11, 30)]
    [InlineData("Pacific/Chatham", 12, 4, 8, 12, 3, 18, 15)]
    [InlineData("Pacific/Kiritimati", 12, 5, 8, 12, 4, 18, 0)]
    [InlineData("Pacific/Pago_Pago", 12, 4, 8, 12, 4, 19, 0)]
    public void An_hour_begins_at_the_first_instant_the_local_clock_reaches_it(string zone, int month, int day, int hour, int dueMonth, int dueDay, int dueHour, int dueMinute)
    {
        var due = LocalDelivery.HourBegins(TimeZoneInfo.FindSystemTimeZoneById(zone), new DateOnly(2026, month, day), hour);
        Assert.Equal(Utc(dueMonth, dueDay, dueHour, dueMinute), due.ToUniversalTime());
    }

    public static readonly string[] Zones =
    [
        "Asia/Seoul", "America/Los_Angeles", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu",
        "America/St_Johns", "Pacific/Chatham", "Pacific/Kiritimati", "Pacific/Pago_Pago",
    ];

    [Theory]
    [InlineData(3, 3)] // the week New York and (two weeks later) Berlin spring forward
    [InlineData(10, 22)] // Berlin, then New York, fall back
    public void Hourly_intervals_over_two_weeks_make_every_local_hour_due_exactly_once(int month, int day)
    {
        var start = Utc(month, day, 0);
        var seen = new List<DueSlot>();
        // An hourly firing, and once a three-hour gap (downtime) covered by one interval.
        for (var at = start; at < start.AddDays(14);)
        {
            var next = at.AddHours(at == start.AddDays(5) ? 3 : 1);
            seen.AddRange(LocalDelivery.DueBetween(Zones, at, next));
            at = next;
        }
        foreach (var zone in Zones)
        {
            var tz = TimeZoneInfo.FindSystemTimeZoneById(zone);
            var daily = seen.Where(s => s.TimeZone == zone && s.Cadence == Cadence.Daily).ToList();
            // Whole local days inside the fortnight: each of the 24 hours exactly once.
            foreach (var date in daily.Select(s => s.Period).Distinct().Skip(1).SkipLast(1))
                Assert.Equal(Enumerable.Range(0, 24), daily.Where(s => s.Period == date).Select(s => s.Hour).Order());
            Assert.All(daily, s => Assert.Equal(s.Period, LocalDelivery.LocalDate(tz, s.DueAt)));
            var weekly = seen.Where(s => s.TimeZone == zone && s.Cadence == Cadence.Weekly).ToList();
            Assert.All(weekly, s => Assert.Equal(DayOfWeek.Monday, s.Period.DayOfWeek));
            Assert.Equal(daily.Count, weekly.Count);
        }
    }
}
