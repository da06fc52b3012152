using Microsoft.Extensions.DependencyInjection;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Issues;
using Newsletter.Scheduling;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Delivery;

/// <summary>
/// The local-time schedule over real PostgreSQL and a real SMTP server, with an injected clock:
/// readers across the world, each getting their digest in their own hour, through DST changes and
/// changes of their own settings.
/// </summary>
public sealed class ScheduleTests : DatabaseAndSmtpTest
{

    private sealed record Reader(string Email, Cadence Cadence, string? Zone, int? Hour, DayOfWeek? Weekday = null);

    private sealed record Got(string Email, DateTimeOffset At);

    private IServiceProvider Services(FixedClock clock, ScheduleOptions? schedule = null) =>
        _db.Services(clock, new SmtpTransport(new SmtpOptions { Host = "127.0.0.1", Port = _smtp.Port, Security = SmtpSecurity.None }),
            schedule: schedule ?? new ScheduleOptions { TimeZone = "Asia/Seoul", DeliveryHour = 8, WeeklyDay = DayOfWeek.Monday });

    private async Task AddAsync(IServiceProvider services, params Reader[] readers)
    {
        foreach (var r in readers)
        {
            await services.GetRequiredService<SubscriberStore>().AddActiveAsync(new NewSubscriber(r.Email, null, r.Cadence, Language.En));
            await SetAsync(r);
        }
    }

    private Task SetAsync(Reader r) => _db.ScalarAsync<object?>(
        $"update subscribers set time_zone = {(r.Zone is null ? "null" : $"'{r.Zone}'")}, delivery_hour = {(r.Hour?.ToString() ?? "null")}, " +
        $"weekly_day = {(r.Weekday is { } d ? ((int)d).ToString() : "null")} where email = '{r.Email}' returning null");

    /// <summary>Fires the schedule every quarter hour from the clock's time to <paramref name="until"/>, sending what comes due; returns who got mail when.</summary>
    private async Task<List<Got>> RunAsync(IServiceProvider services, FixedClock clock, DateTimeOffset until, Func<DateTimeOffset, Task>? each = null)
    {
        var got = new List<Got>();
        var scheduler = services.GetRequiredService<DigestScheduler>();
        await using var engine = services.GetRequiredService<DeliveryEngine>();
        for (var at = clock.GetUtcNow(); at <= until; at = at.AddMinutes(15))
        {
            clock.Set(at);
            if (each is not null) await each(at);
            await scheduler.FireAsync();
            while (await engine.DeliverBatchAsync() > 0) { }
            while (_smtp.Messages.TryDequeue(out var m)) got.Add(new Got(m.Recipients[0], at));
        }
        return got;
    }

    private static DateTime Local(string zone, DateTimeOffset at) => TimeZoneInfo.ConvertTime(at, TimeZoneInfo.FindSystemTimeZoneById(zone)).DateTime;

    [Fact]
    public async Task A_simulated_fortnight_gives_each_reader_one_digest_per_local_day_in_their_hour_across_zones_and_DST()
    {
        // 24 October to 3 November 2026: Berlin falls back on the 25th, New York on 1 November.
        var start = new DateTimeOffset(2026, 10, 23, 0, 0, 0, TimeSpan.Zero);
        var end = new DateTimeOffset(2026, 11, 4, 0, 0, 0, TimeSpan.Zero);
        var clock = new FixedClock(start);
        var services = Services(clock);
        var daily = new[]
        {
            new Reader("seoul@example.net", Cadence.Daily, "Asia/Seoul", 8),
            new Reader("default@example.net", Cadence.Daily, null, null), // the configured default: Seoul, 08:00
            new Reader("la@example.net", Cadence.Daily, "America/Los_Angeles", 7),
            new Reader("berlin@example.net", Cadence.Daily, "Europe/Berlin", 2), // 02:00 happens twice on the 25th
            new Reader("newyork@example.net", Cadence.Daily, "America/New_York", 1), // 01:00 happens twice on 1 November
            new Reader("kolkata@example.net", Cadence.Daily, "Asia/Kolkata", 8),
            new Reader("kathmandu@example.net", Cadence.Daily, "Asia/Kathmandu", 8),
            new Reader("stjohns@example.net", Cadence.Daily, "America/St_Johns", 6),
            new Reader("chatham@example.net", Cadence.Daily, "Pacific/Chatham", 23),
            new Reader("kiritimati@example.net", Cadence.Daily, "Pacific/Kiritimati", 0),
            new Reader("pagopago@example.net", Cadence.Daily, "Pacific/Pago_Pago", 23),
        };
        var weekly = new[]
        {
            new Reader("weekly-default@example.net", Cadence.Weekly, null, null), // Mondays, 08:00 Seoul
            new Reader("weekly-berlin@example.net", Cadence.Weekly, "Europe/Berlin", 9, DayOfWeek.Wednesday),
            new Reader("weekly-kiritimati@example.net", Cadence.Weekly, "Pacific/Kiritimati", 7, DayOfWeek.Sunday),
        };
        await AddAsync(services, [.. daily, .. weekly]);
        // Two readers who change their settings half-way: one to an hour that has already passed that
        // day (no second digest that day, the next day's at the new hour), one to another zone.
        var mover = new Reader("mover@example.net", Cadence.Daily, "Asia/Seoul", 20);
        var traveller = new Reader("traveller@example.net", Cadence.Daily, "Asia/Seoul", 8);
        await AddAsync(services, mover, traveller);
        var moverChange = new DateTimeOffset(2026, 10, 28, 1, 0, 0, TimeSpan.Zero); // 10:00 in Seoul
        var travellerChange = new DateTimeOffset(2026, 10, 29, 2, 0, 0, TimeSpan.Zero); // after Seoul's 08:00; 19:00 the day before in LA
        var issues = services.GetRequiredService<IssueStore>();

        var got = await RunAsync(services, clock, end, async at =>
        {
            // An issue published every day at 12:00 UTC.
            if (at.Hour == 12 && at.Minute == 0)
                await issues.ImportAsync(SampleIssue.Document with { Slug = $"issue-{at:MMdd}" }, publish: true);
            if (at == moverChange) await SetAsync(mover with { Hour = 6 });
            if (at == travellerChange) await SetAsync(traveller with { Zone = "America/Los_Angeles" });
        });

        foreach (var r in daily)
        {
            var zone = r.Zone ?? "Asia/Seoul";
            var hour = r.Hour ?? 8;
            var mine = got.Where(g => g.Email == r.Email).Select(g => Local(zone, g.At)).ToList();
            // Every local day after the first issue and before the end: exactly one digest, in the reader's hour.
            var days = mine.Select(t => t.Date).ToList();
            Assert.True(days.Count == days.Distinct().Count(), $"{r.Email} got two digests on one day: {string.Join(", ", mine)}");
            Assert.All(mine, t => Assert.True(t.Hour == hour, $"{r.Email}: a digest at {t:yyyy-MM-dd HH:mm} local, not in hour {hour}"));
            var first = days.Min();
            var expected = Enumerable.Range(0, 20).Select(i => first.AddDays(i))
                .Where(d => LocalDelivery.HourBegins(TimeZoneInfo.FindSystemTimeZoneById(zone), DateOnly.FromDateTime(d), hour) <= end);
            Assert.Equal(expected, days.Order());
        }
        foreach (var r in weekly)
        {
            var zone = r.Zone ?? "Asia/Seoul";
            var mine = got.Where(g => g.Email == r.Email).Select(g => Local(zone, g.At)).ToList();
            // Each of its weekdays after the first issue (23 October, 12:00 UTC) and before the end.
            var tz = TimeZoneInfo.FindSystemTimeZoneById(zone);
            var expected = Enumerable.Range(0, 14).Select(i => new DateOnly(2026, 10, 22).AddDays(i))
                .Where(d => d.DayOfWeek == (r.Weekday ?? DayOfWeek.Monday))
                .Count(d => LocalDelivery.HourBegins(tz, d, r.Hour ?? 8) is var due && due > new DateTimeOffset(2026, 10, 23, 12, 0, 0, TimeSpan.Zero) && due <= end);
            Assert.True(expected >= 1);
            Assert.Equal(expected, mine.Count);
            Assert.All(mine, t => Assert.Equal((r.Weekday ?? DayOfWeek.Monday, r.Hour ?? 8), (t.DayOfWeek, t.Hour)));
        }
        var moved = got.Where(g => g.Email == mover.Email).Select(g => Local("Asia/Seoul", g.At)).ToList();
        Assert.DoesNotContain(moved, t => t.Date == new DateTime(2026, 10, 28));
        Assert.Contains(moved, t => t.Date == new DateTime(2026, 10, 29) && t.Hour == 6);
        Assert.Equal(moved.Count, moved.Select(t => t.Date).Distinct().Count());
        var travelled = got.Where(g => g.Email == traveller.Email).ToList();
        Assert.All(travelled.Where(g => g.At > travellerChange), g => Assert.Equal(8, Local("America/Los_Angeles", g.At).Hour));

        // Every issue published a day before the end reached every daily reader exactly once (receipts
        // of sent deliveries), whatever they changed; and each weekly reader every issue published
        // before their last digest.
        Assert.Equal("", await _db.ScalarAsync<string>($"""
            select coalesce(string_agg(s.email || ' ' || i.slug, ', '), '') from subscribers s cross join issues i
            where i.published_at < case when s.cadence = 'daily' then '2026-11-02T12:00:00Z'::timestamptz
                                        else (select max(d.updated_at) - interval '1 hour' from deliveries d where d.subscriber_id = s.id) end
              and (select count(*) from receipts r join deliveries d on d.id = r.delivery_id
                   where r.subscriber_id = s.id and r.issue_id = i.id and d.status = 'sent') <> 1
            """));
        // One run per cadence and local date (or week), each done once its last zone is past.
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from (select kind, period from runs group by kind, period having count(*) > 1) twice"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from runs where status <> 'done' and slices_until < '2026-11-03T00:00:00Z'"));
    }

    [Fact]
    public async Task Two_processes_firing_at_once_make_one_enqueue_and_three_hours_of_downtime_catch_up_once()
    {
        var clock = new FixedClock(new DateTimeOffset(2026, 12, 3, 20, 0, 0, TimeSpan.Zero));
        var first = Services(clock);
        var second = Services(clock);
        await first.GetRequiredService<IssueStore>().ImportAsync(SampleIssue.Document, publish: true);
        await AddAsync(first,
            new Reader("seoul@example.net", Cadence.Daily, "Asia/Seoul", 8), // 23:00 UTC
            new Reader("kathmandu@example.net", Cadence.Daily, "Asia/Kathmandu", 7), // 01:15 UTC
            new Reader("later@example.net", Cadence.Daily, "Asia/Seoul", 10)); // 01:00 UTC, after the downtime
        await first.GetRequiredService<DigestScheduler>().FireAsync();

        // Down from 20:00 to 01:45 UTC (more than three hours), then both nodes fire at once.
        clock.Set(new DateTimeOffset(2026, 12, 4, 1, 45, 0, TimeSpan.Zero));
        var counts = await Task.WhenAll(first.GetRequiredService<DigestScheduler>().FireAsync(), second.GetRequiredService<DigestScheduler>().FireAsync());
        Assert.Equal([0, 3], counts.Order());
        // Released once; both nodes' workers write the readers' deliveries, each once.
        var written = await Task.WhenAll(first.GetRequiredService<SendLedger>().WriteAllReleasedAsync(), second.GetRequiredService<SendLedger>().WriteAllReleasedAsync());
        Assert.Equal(3, written.Sum());
        Assert.Equal(3L, await _db.ScalarAsync<long>("select count(*) from deliveries"));
        Assert.Equal(0, await first.GetRequiredService<DigestScheduler>().FireAsync());

        // Down for longer than MaxLateness (6 hours): what came due before that is skipped, not sent late.
        await AddAsync(first, new Reader("berlin@example.net", Cadence.Daily, "Europe/Berlin", 3)); // 02:00 UTC
        clock.Set(new DateTimeOffset(2026, 12, 4, 9, 0, 0, TimeSpan.Zero));
        Assert.Equal(0, await first.GetRequiredService<DigestScheduler>().FireAsync());
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from deliveries d join subscribers s on s.id = d.subscriber_id where s.email = 'berlin@example.net'"));
    }

    [Fact]
    public async Task Sending_the_daily_digest_now_ignores_local_hours_and_the_day_run_still_comes()
    {
        var clock = new FixedClock(new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero));
        var services = Services(clock);
        await services.GetRequiredService<IssueStore>().ImportAsync(SampleIssue.Document, publish: true);
        await AddAsync(services, new Reader("a@example.net", Cadence.Daily, "Asia/Seoul", 8), new Reader("b@example.net", Cadence.Daily, "America/Los_Angeles", 8));
        var (now, _) = await services.GetRequiredService<SendLedger>().StartDigestAsync(Cadence.Daily, null);
        Assert.Equal(2, now.Total);
        await services.GetRequiredService<IssueStore>().ImportAsync(SampleIssue.Document with { Slug = "next" }, publish: true);
        clock.Advance(TimeSpan.FromMinutes(15));
        var got = await RunAsync(services, clock, new DateTimeOffset(2026, 12, 5, 0, 0, 0, TimeSpan.Zero));
        // The run started by hand went at once; the next issue came at each reader's own hour.
        Assert.Equal(4, got.Count);
        Assert.Equal(8, Local("America/Los_Angeles", got.Where(g => g.Email == "b@example.net").Max(g => g.At)).Hour);
    }

    [Fact]
    public async Task The_forecast_counts_the_readers_due_in_each_of_the_next_hours_and_those_still_to_come_in_a_run()
    {
        var clock = new FixedClock(new DateTimeOffset(2026, 12, 3, 20, 0, 0, TimeSpan.Zero));
        var services = Services(clock);
        await AddAsync(services,
            new Reader("seoul@example.net", Cadence.Daily, "Asia/Seoul", 8), // 23:00 UTC
            new Reader("kathmandu@example.net", Cadence.Daily, "Asia/Kathmandu", 7), // 01:15 UTC
            new Reader("la@example.net", Cadence.Daily, "America/Los_Angeles", 8), // 16:00 UTC on the 4th
            new Reader("berlin@example.net", Cadence.Weekly, "Europe/Berlin", 9, DayOfWeek.Friday), // 08:00 UTC on Friday the 4th
            new Reader("monday@example.net", Cadence.Weekly, null, null)); // Mondays: not in the next 24 hours
        var forecast = services.GetRequiredService<SendForecast>();

        var hours = await forecast.NextDayAsync();
        Assert.Equal(24, hours.Count);
        Assert.Equal(new DateTimeOffset(2026, 12, 3, 20, 0, 0, TimeSpan.Zero), hours[0].Hour);
        Assert.Equal([(3, 1L), (5, 1L), (12, 1L), (20, 1L)], hours.Select((h, i) => (i, h.Readers)).Where(h => h.Readers > 0).ToArray());
        Assert.Equal(3, await forecast.LaterInRunAsync(Cadence.Daily, new DateOnly(2026, 12, 4)));
        Assert.Equal(
            [(new DateTimeOffset(2026, 12, 3, 23, 0, 0, TimeSpan.Zero), 1L), (new DateTimeOffset(2026, 12, 4, 1, 0, 0, TimeSpan.Zero), 1L), (new DateTimeOffset(2026, 12, 4, 16, 0, 0, TimeSpan.Zero), 1L)],
            await forecast.LaterInRunByHourAsync(Cadence.Daily, new DateOnly(2026, 12, 4)));
        Assert.Equal(1, await forecast.LaterInRunAsync(Cadence.Weekly, new DateOnly(2026, 11, 30)));
        // Once Seoul's and Kathmandu's hours are past, only Los Angeles is still to come.
        clock.Set(new DateTimeOffset(2026, 12, 4, 2, 0, 0, TimeSpan.Zero));
        Assert.Equal(1, await forecast.LaterInRunAsync(Cadence.Daily, new DateOnly(2026, 12, 4)));
    }

    [Fact]
    public async Task Pausing_a_days_run_holds_the_hours_still_to_come_and_cancelling_it_gives_their_issues_to_the_next_day()
    {
        var clock = new FixedClock(new DateTimeOffset(2026, 12, 3, 22, 45, 0, TimeSpan.Zero));
        var services = Services(clock);
        await services.GetRequiredService<IssueStore>().ImportAsync(SampleIssue.Document, publish: true);
        await AddAsync(services,
            new Reader("seoul@example.net", Cadence.Daily, "Asia/Seoul", 8), // 23:00 UTC on the 3rd
            new Reader("berlin@example.net", Cadence.Daily, "Europe/Berlin", 8), // 07:00 UTC on the 4th
            new Reader("la@example.net", Cadence.Daily, "America/Los_Angeles", 8)); // 16:00 UTC on the 4th
        await services.GetRequiredService<DigestScheduler>().FireAsync();
        var got = await RunAsync(services, clock, new DateTimeOffset(2026, 12, 3, 23, 0, 0, TimeSpan.Zero));
        Assert.Equal(["seoul@example.net"], got.Select(g => g.Email));
        var ledger = services.GetRequiredService<SendLedger>();
        var run = (await ledger.ListAsync()).Single(r => r.Kind == "daily");
        Assert.Equal(new DateTime(2026, 12, 4), run.Period);

        // Paused: Berlin's hour comes due into the paused run and waits there.
        await ledger.PauseAsync(run.Id, "checking a complaint");
        clock.Advance(TimeSpan.FromMinutes(15));
        got = await RunAsync(services, clock, new DateTimeOffset(2026, 12, 4, 8, 0, 0, TimeSpan.Zero));
        Assert.Empty(got);
        Assert.Equal(2, (await ledger.GetAsync(run.Id))!.Total);
        // Resumed: Berlin's digest goes; then cancelled before Los Angeles' hour: nothing more for the 4th.
        await ledger.ResumeAsync(run.Id);
        clock.Advance(TimeSpan.FromMinutes(15));
        got = await RunAsync(services, clock, new DateTimeOffset(2026, 12, 4, 9, 0, 0, TimeSpan.Zero));
        Assert.Equal(["berlin@example.net"], got.Select(g => g.Email));
        await ledger.CancelAsync(run.Id);
        clock.Advance(TimeSpan.FromMinutes(15));
        got = await RunAsync(services, clock, new DateTimeOffset(2026, 12, 5, 17, 0, 0, TimeSpan.Zero));
        // Los Angeles gets the issue on the next local day, in its own hour.
        var la = Assert.Single(got);
        Assert.Equal(("la@example.net", new DateTime(2026, 12, 5, 8, 0, 0)), (la.Email, Local("America/Los_Angeles", la.At)));
    }

    [Fact]
    public async Task A_released_hour_is_written_a_batch_at_a_time_by_any_worker_each_reader_once_by_the_slot_they_belong_to_then()
    {
        var clock = new FixedClock(new DateTimeOffset(2026, 12, 3, 22, 45, 0, TimeSpan.Zero));
        var first = Services(clock);
        var second = Services(clock);
        await first.GetRequiredService<IssueStore>().ImportAsync(SampleIssue.Document, publish: true);
        var seoul = Enumerable.Range(1, 5).Select(i => new Reader($"seoul{i}@example.net", Cadence.Daily, "Asia/Seoul", 8)).ToArray(); // 23:00 UTC
        await AddAsync(first, [.. seoul, new Reader("default@example.net", Cadence.Daily, null, null)]); // the default slot: Seoul, 08:00
        var scheduler = first.GetRequiredService<DigestScheduler>();
        await scheduler.FireAsync();

        // The hour comes due: one slot released with its six readers, nothing written per reader yet,
        // and the run counts them as queued.
        clock.Set(new DateTimeOffset(2026, 12, 3, 23, 0, 0, TimeSpan.Zero));
        Assert.Equal(6, await scheduler.FireAsync());
        Assert.Equal(1L, await _db.ScalarAsync<long>("select count(*) from run_slots"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from deliveries"));
        var ledger = first.GetRequiredService<SendLedger>();
        var run = (await ledger.ListAsync()).Single();
        Assert.Equal((6, 6, "sending"), (run.Total, run.Queued, run.Status));

        // Two workers take batches of two in turn, each from where the last stopped.
        Assert.Equal((true, 2), await ledger.WriteReleasedAsync(batch: 2));
        Assert.Equal((true, 2), await second.GetRequiredService<SendLedger>().WriteReleasedAsync(batch: 2));
        Assert.Equal((6, 6), ((await ledger.GetAsync(run.Id))!.Total, (await ledger.GetAsync(run.Id))!.Queued));
        // Before the last batch, a reader not yet taken moves to 10:00 and one already taken to 09:00.
        var ids = (await _db.ScalarAsync<string>("select string_agg(email, ',' order by id) from subscribers")).Split(',');
        var notYet = seoul.Single(r => r.Email == ids[4]);
        var taken = seoul.Single(r => r.Email == ids[0]);
        await SetAsync(notYet with { Hour = 10 });
        await SetAsync(taken with { Hour = 9 });
        Assert.Equal((true, 1), await ledger.WriteReleasedAsync(batch: 2));
        Assert.Equal((false, 0), await ledger.WriteReleasedAsync(batch: 2));
        Assert.Equal(5L, await _db.ScalarAsync<long>("select count(*) from deliveries"));
        Assert.Equal((5, 5), ((await ledger.GetAsync(run.Id))!.Total, (await ledger.GetAsync(run.Id))!.Queued));

        // At 09:00 and 10:00 Seoul: the mover gets the day's digest at their new hour; the reader
        // already taken gets nothing more that day.
        await using (var engine = first.GetRequiredService<DeliveryEngine>()) await engine.DeliverRunAsync(run.Id);
        var sent = new List<string>();
        while (_smtp.Messages.TryDequeue(out var m)) sent.Add(m.Recipients[0]);
        Assert.Equal(ids.Where(e => e != notYet.Email).Order(), sent.Order());
        var got = await RunAsync(first, clock, new DateTimeOffset(2026, 12, 4, 1, 30, 0, TimeSpan.Zero));
        Assert.Equal([notYet.Email], got.Select(g => g.Email));
        Assert.Equal(10, Local("Asia/Seoul", got[0].At).Hour);
        Assert.Equal(6L, await _db.ScalarAsync<long>("select count(*) from deliveries where status = 'sent'"));
        Assert.Equal(6L, await _db.ScalarAsync<long>("select count(distinct subscriber_id) from receipts"));
    }

    [Fact]
    public async Task Cancelling_a_run_whose_hour_is_released_but_not_written_writes_nothing_and_the_next_day_brings_the_issue()
    {
        var clock = new FixedClock(new DateTimeOffset(2026, 12, 3, 22, 45, 0, TimeSpan.Zero));
        var services = Services(clock);
        await services.GetRequiredService<IssueStore>().ImportAsync(SampleIssue.Document, publish: true);
        await AddAsync(services, new Reader("seoul@example.net", Cadence.Daily, "Asia/Seoul", 8));
        var scheduler = services.GetRequiredService<DigestScheduler>();
        await scheduler.FireAsync();
        clock.Set(new DateTimeOffset(2026, 12, 3, 23, 0, 0, TimeSpan.Zero));
        Assert.Equal(1, await scheduler.FireAsync());
        var ledger = services.GetRequiredService<SendLedger>();
        var run = await ledger.CancelAsync((await ledger.ListAsync()).Single().Id);
        Assert.Equal((0, 0, "cancelled"), (run.Total, run.Queued, run.Status));
        Assert.Equal((false, 0), await ledger.WriteReleasedAsync());
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from deliveries"));

        clock.Advance(TimeSpan.FromMinutes(15));
        var got = await RunAsync(services, clock, new DateTimeOffset(2026, 12, 4, 23, 0, 0, TimeSpan.Zero));
        var next = Assert.Single(got);
        Assert.Equal(new DateTime(2026, 12, 5, 8, 0, 0), Local("Asia/Seoul", next.At));
    }

    [Fact]
    public async Task A_batch_that_fails_half_way_leaves_nothing_and_is_written_whole_by_the_next_claim_while_the_rest_is_sent()
    {
        var clock = new FixedClock(new DateTimeOffset(2026, 12, 3, 22, 45, 0, TimeSpan.Zero));
        var services = Services(clock);
        await services.GetRequiredService<IssueStore>().ImportAsync(SampleIssue.Document, publish: true);
        await AddAsync(services, [.. Enumerable.Range(1, 4).Select(i => new Reader($"seoul{i}@example.net", Cadence.Daily, "Asia/Seoul", 8))]);
        var scheduler = services.GetRequiredService<DigestScheduler>();
        await scheduler.FireAsync();
        clock.Set(new DateTimeOffset(2026, 12, 3, 23, 0, 0, TimeSpan.Zero));
        Assert.Equal(4, await scheduler.FireAsync());

        // The database refuses the batch's third receipt (a full disk, say).
        await _db.ScalarAsync<object?>("""
            create sequence receipt_fault;
            create function refuse_third_receipt() returns trigger language plpgsql as $$
            begin
                if nextval('receipt_fault') = 3 then raise exception 'could not extend file: No space left on device'; end if;
                return new;
            end $$;
            create trigger refuse_third_receipt before insert on receipts for each row execute function refuse_third_receipt();
            select null
            """);
        var ledger = services.GetRequiredService<SendLedger>();
        await Assert.ThrowsAnyAsync<Npgsql.PostgresException>(() => ledger.WriteReleasedAsync());
        Assert.Equal("0 0 0 0 false", await _db.ScalarAsync<string>("""
            select (select count(*) from deliveries) || ' ' || (select count(*) from receipts) || ' ' || taken || ' ' || after_subscriber || ' ' || done
            from run_slots
            """));

        // A worker's claim: the failed batch is logged and left; nothing is sent, nothing lost.
        await using (var engine = services.GetRequiredService<DeliveryEngine>())
        {
            await _db.ScalarAsync<object?>("select setval('receipt_fault', 1, false)::text");
            Assert.Equal(0, await engine.DeliverBatchAsync());
            await _db.ScalarAsync<object?>("drop trigger refuse_third_receipt on receipts; select null");
            // The next claim writes the batch whole and sends it, each reader once.
            Assert.Equal(4, await engine.DeliverBatchAsync());
        }
        Assert.Equal(4, _smtp.Messages.Count);
        Assert.Equal("4 4 4 true", await _db.ScalarAsync<string>("""
            select (select count(*) from deliveries where status = 'sent') || ' ' || (select count(*) from receipts) || ' ' || taken || ' ' || done
            from run_slots
            """));
    }
}
