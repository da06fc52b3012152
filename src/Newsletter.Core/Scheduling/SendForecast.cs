using Dapper;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Subscribers;
using Npgsql;

namespace Newsletter.Scheduling;

/// <summary>Readers whose delivery time comes due in a slot.</summary>
public sealed record ForecastSlot(DueSlot Slot, long Readers);

/// <summary>
/// What the local-time schedule will send: the active readers of each slot (cadence, zone, hour,
/// weekday) that comes due in an interval, from one grouped count of the subscribers. A reader gets a
/// digest at their time only if an issue is waiting for them, so these are readers, not messages.
/// </summary>
public sealed class SendForecast(NpgsqlDataSource db, IOptions<ScheduleOptions> options, TimeProvider clock)
{
    public async Task<IReadOnlyList<ForecastSlot>> BetweenAsync(DateTimeOffset after, DateTimeOffset until, CancellationToken ct = default)
    {
        var o = options.Value;
        await using var connection = await db.OpenConnectionAsync(ct);
        var groups = (await connection.QueryAsync<(string Cadence, string Zone, int Hour, int Weekday, long Readers)>(new CommandDefinition("""
            select cadence, coalesce(time_zone, @zone), coalesce(delivery_hour, @hour)::int,
                   case when cadence = 'weekly' then coalesce(weekly_day, @day)::int else -1 end, count(*)
            from subscribers where status = 'active'
            group by 1, 2, 3, 4
            """, new { zone = o.TimeZone, hour = o.DeliveryHour, day = (int)o.WeeklyDay }, cancellationToken: ct))).ToList();
        var readers = groups.ToDictionary(g => (g.Cadence, g.Zone, g.Hour, g.Weekday), g => g.Readers);
        return LocalDelivery.DueBetween(groups.Select(g => g.Zone), after, until)
            .Select(s => new ForecastSlot(s, readers.GetValueOrDefault((Wire.Name(s.Cadence), s.TimeZone, s.Hour, s.Weekday is { } d ? (int)d : -1))))
            .Where(f => f.Readers > 0)
            .OrderBy(f => f.Slot.DueAt)
            .ToList();
    }

    /// <summary>Readers of a scheduled run (cadence and local period) whose delivery time is still to come.</summary>
    public async Task<long> LaterInRunAsync(Cadence cadence, DateOnly period, CancellationToken ct = default) =>
        (await LaterInRunByHourAsync(cadence, period, ct)).Sum(h => h.Readers);

    /// <summary>
    /// Readers of a scheduled run whose delivery time is still to come, per hour (UTC, the start of
    /// the hour in which their time falls), earliest first; hours without readers are left out.
    /// </summary>
    public async Task<IReadOnlyList<(DateTimeOffset Hour, long Readers)>> LaterInRunByHourAsync(Cadence cadence, DateOnly period, CancellationToken ct = default)
    {
        var now = clock.GetUtcNow();
        var until = LocalDelivery.SlicesUntil(cadence, period);
        if (until <= now) return [];
        return (await BetweenAsync(now, until, ct))
            .Where(f => f.Slot.Cadence == cadence && f.Slot.Period == period)
            .GroupBy(f => HourOf(f.Slot.DueAt))
            .Select(g => (g.Key, g.Sum(f => f.Readers)))
            .OrderBy(h => h.Key)
            .ToList();
    }

    private static DateTimeOffset HourOf(DateTimeOffset at)
    {
        var utc = at.ToUniversalTime();
        return new DateTimeOffset(utc.Year, utc.Month, utc.Day, utc.Hour, 0, 0, TimeSpan.Zero);
    }

    /// <summary>Readers due in each of the next 24 hours (from the start of the current hour), both cadences together.</summary>
    public async Task<IReadOnlyList<(DateTimeOffset Hour, long Readers)>> NextDayAsync(CancellationToken ct = default)
    {
        var now = clock.GetUtcNow();
        var start = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero);
        var slots = await BetweenAsync(now, start.AddHours(24), ct);
        return Enumerable.Range(0, 24).Select(i => start.AddHours(i))
            .Select(h => (h, slots.Where(f => f.Slot.DueAt >= h && f.Slot.DueAt < h.AddHours(1)).Sum(f => f.Readers)))
            .ToList();
    }
}
