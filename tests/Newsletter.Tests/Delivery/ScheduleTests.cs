using Newsletter.Configuration;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Delivery;

public sealed class ScheduleTests
{
    private static async Task<long> RunsAsync(TestDatabase db, string kind) =>
        await db.ScalarAsync<long>($"select count(*) from runs where kind = '{kind}'");

    /// <summary>Fires every scheduled time between two instants with the clock set to each firing.</summary>
    private static async Task FireAllAsync(TestDatabase db, FixedClock clock, ScheduleOptions options, DateTimeOffset from, DateTimeOffset to)
    {
        var scheduler = db.Scheduler(clock, options);
        var firings = new[] { Cadence.Daily, Cadence.Weekly }
            .SelectMany(c => Times(scheduler.Cron(c), from, to).Select(t => (c, t)))
            .OrderBy(f => f.t);
        foreach (var (cadence, at) in firings)
        {
            clock.Set(at);
            await scheduler.FireAsync(cadence, at);
        }
    }

    private static IEnumerable<DateTimeOffset> Times(Quartz.CronExpression cron, DateTimeOffset from, DateTimeOffset to)
    {
        for (var t = cron.GetNextValidTimeAfter(from); t is { } n && n < to; t = cron.GetNextValidTimeAfter(n))
            yield return n;
    }

    [Fact]
    public async Task A_week_of_firings_makes_seven_daily_runs_and_one_weekly_run()
    {
        await using var db = await TestDatabase.CreateAsync();
        var options = new ScheduleOptions();
        var seoul = TimeZoneInfo.FindSystemTimeZoneById("Asia/Seoul");
        var monday = new DateTimeOffset(2026, 11, 30, 0, 0, 0, seoul.GetUtcOffset(new DateTime(2026, 11, 30)));
        var clock = new FixedClock(monday);

        await FireAllAsync(db, clock, options, monday, monday.AddDays(7));
        // A retried job or a second node firing the same period again changes nothing.
        await FireAllAsync(db, clock, options, monday, monday.AddDays(1));

        Assert.Equal(7, await RunsAsync(db, "daily"));
        Assert.Equal(1, await RunsAsync(db, "weekly"));
        var periods = await db.ScalarAsync<string>("select string_agg(to_char(period, 'YYYY-MM-DD'), ',' order by period) from runs where kind = 'weekly'");
        Assert.Equal("2026-11-30", periods);
    }

    [Fact]
    public async Task After_downtime_a_missed_period_is_sent_once_within_the_lateness_bound()
    {
        await using var db = await TestDatabase.CreateAsync();
        var options = new ScheduleOptions { TimeZone = "UTC", Daily = "0 0 8 * * ?", MaxLateness = TimeSpan.FromHours(6) };
        // Down since Tuesday morning; back on Thursday at 11:00: Tuesday's and Wednesday's digests are not replayed.
        var clock = new FixedClock(new DateTimeOffset(2026, 12, 3, 11, 0, 0, TimeSpan.Zero));
        var scheduler = db.Scheduler(clock, options);

        await scheduler.CatchUpAsync();
        await scheduler.CatchUpAsync();

        Assert.Equal(1, await RunsAsync(db, "daily"));
        Assert.Equal("2026-12-03", await db.ScalarAsync<string>("select to_char(period, 'YYYY-MM-DD') from runs where kind = 'daily'"));
    }

    [Fact]
    public async Task A_missed_period_older_than_the_lateness_bound_is_skipped()
    {
        await using var db = await TestDatabase.CreateAsync();
        var options = new ScheduleOptions { TimeZone = "UTC", Daily = "0 0 8 * * ?", Weekly = "0 0 8 ? * MON", MaxLateness = TimeSpan.FromHours(6) };
        var clock = new FixedClock(new DateTimeOffset(2026, 12, 3, 14, 30, 0, TimeSpan.Zero));

        await db.Scheduler(clock, options).CatchUpAsync();

        Assert.Equal(0L, await db.ScalarAsync<long>("select count(*) from runs"));
    }

    [Theory]
    [InlineData("0 30 2 * * ?", 2026, 3, 5)]   // 2026-03-08: 02:30 does not exist in New York
    [InlineData("0 30 1 * * ?", 2026, 10, 29)] // 2026-11-01: 01:30 happens twice in New York
    public async Task Daylight_saving_changes_neither_skip_nor_double_a_daily_run(string cron, int year, int month, int day)
    {
        await using var db = await TestDatabase.CreateAsync();
        var options = new ScheduleOptions { TimeZone = "America/New_York", Daily = cron, Weekly = "0 0 12 ? * WED" };
        var start = new DateTimeOffset(year, month, day, 12, 0, 0, TimeSpan.Zero);
        var clock = new FixedClock(start);

        await FireAllAsync(db, clock, options, start, start.AddDays(6));

        var days = await db.ScalarAsync<string>("select string_agg(to_char(period, 'MM-DD'), ',' order by period) from runs where kind = 'daily'");
        var expected = string.Join(",", Enumerable.Range(1, 6).Select(i => new DateOnly(year, month, day).AddDays(i).ToString("MM-dd")));
        Assert.Equal(expected, days);
    }

    [Fact]
    public async Task A_changed_schedule_in_configuration_replaces_the_stored_triggers_at_start_up()
    {
        await using var db = await TestDatabase.CreateAsync();
        var first = new Dictionary<string, string?> { ["Newsletter__Schedule__Daily"] = "0 0 7 * * ?", ["Newsletter__Schedule__MaxLateness"] = "00:00:00" };
        var second = new Dictionary<string, string?>
        {
            ["Newsletter__Schedule__Daily"] = "0 15 9 * * ?",
            ["Newsletter__Schedule__TimeZone"] = "Europe/Berlin",
            ["Newsletter__Schedule__MaxLateness"] = "00:00:00",
        };

        await (await ServiceProcess.StartAsync(db, first)).DisposeAsync();
        Assert.Equal("0 0 7 * * ?", await db.ScalarAsync<string>("select cron_expression from qrtz_cron_triggers where trigger_name = 'digest-daily'"));
        await (await ServiceProcess.StartAsync(db, second)).DisposeAsync();

        Assert.Equal("0 15 9 * * ?|Europe/Berlin", await db.ScalarAsync<string>("select cron_expression || '|' || time_zone_id from qrtz_cron_triggers where trigger_name = 'digest-daily'"));
        Assert.Equal(2L, await db.ScalarAsync<long>("select count(*) from qrtz_triggers"));
    }
}
