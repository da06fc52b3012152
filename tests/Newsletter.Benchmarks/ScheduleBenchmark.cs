using Dapper;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Issues;
using Newsletter.Scheduling;
using Newsletter.Storage;
using Newsletter.Subscribers;
using Npgsql;
using NpgsqlTypes;

namespace Newsletter.Benchmarks;

/// <summary>
/// The local-time schedule at scale: N daily readers spread evenly over 24 zones (one per whole UTC
/// offset, all at 08:00 local), so each hour one zone's slice comes due. Each reader has a history
/// (<c>--history H</c>, default 52: a year of weekly issues, every one received, except that one
/// reader in a hundred is owed the oldest, given back) and lacks the newest. Fires the real
/// <see cref="DigestScheduler"/> once per hour over a day, with the clock set to each hour, and times
/// the release of each slice (the hour's enqueue), then its batches written one after another
/// (<see cref="SendLedger.WriteReleasedAsync"/>, as the workers do ahead of their claims): the first,
/// each, and all. The baseline in the same run is the "send now" enqueue (<see cref="SendLedger.EnqueueAsync"/>,
/// one set-based statement without local times) of a population the size of one slice, and the
/// floor is the bare insert of as many deliveries and receipts, without reading anything. CPU time
/// per enqueued reader is PostgreSQL's (from /proc) plus this process's, over the slices. With
/// <c>EXPLAIN_MS=N</c> set, PostgreSQL's auto_explain logs the plan of every statement slower than
/// N ms to the benchmark cluster's server.log.
/// </summary>
internal static class ScheduleBenchmark
{
    // One zone per offset from UTC-11 to UTC+12 (Etc/GMT signs are inverted).
    private static readonly string[] Zones = Enumerable.Range(-12, 24).Select(h => h == 0 ? "Etc/UTC" : $"Etc/GMT{(h > 0 ? "+" : "-")}{Math.Abs(h)}").ToArray();

    public static async Task<int> RunAsync(string[] args)
    {
        var subscribers = args.SkipWhile(a => a != "--subscribers").Skip(1).Select(int.Parse).FirstOrDefault(1_000_000);
        var history = args.SkipWhile(a => a != "--history").Skip(1).Select(int.Parse).FirstOrDefault(52);
        // --server name=value (repeatable): a postgresql.conf setting for the benchmark's cluster.
        var server = args.Select((a, i) => (a, i)).Where(x => x.a == "--server" && x.i + 1 < args.Length)
            .Select(x => args[x.i + 1].Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
        using var scratch = new ScratchDirectory("newsletter-schedule-bench");
        var dir = scratch.Path;
        await using var postgres = await PostgresServer.StartAsync(dir, null, NullLogger.Instance, server);
        var explain = Environment.GetEnvironmentVariable("EXPLAIN_MS");
        await using var db = NpgsqlDataSource.Create(explain is null ? postgres.ConnectionString
            : postgres.ConnectionString + $";Options=-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration={explain} -c auto_explain.log_analyze=on -c auto_explain.log_triggers=on -c auto_explain.log_nested_statements=on");
        await new Migrator(db, NullLogger<Migrator>.Instance).MigrateAsync();
        var start = new DateTimeOffset(2026, 12, 7, 0, 0, 0, TimeSpan.Zero);
        var clock = new SetClock(start.AddDays(-7 * history - 1));
        var issues = new IssueStore(db, clock);
        var seed = Stopwatch.StartNew();
        // The readers' history: an issue a week before this one, each received by every reader.
        for (var week = 0; week < history; week++)
        {
            await issues.ImportAsync(SampleIssue.Document with { Slug = $"week-{week + 1}" }, publish: true);
            clock.Now = clock.Now.AddDays(7);
        }
        clock.Now = start.AddDays(-1);
        await issues.ImportAsync(SampleIssue.Document, publish: true);

        await SeedAsync(db, "reader", "daily", subscribers, start, i => Zones[i % Zones.Length], since: start.AddDays(-7 * history - 2));
        await ReceiveHistoryAsync(db, "daily", history);
        if (history > 0)
            await using (var connection = await db.OpenConnectionAsync())
            {
                // One reader in a hundred had a delivery of the history given back (a failure of ours,
                // a cancelled run): that issue is owed to them, behind newer ones they hold.
                await connection.ExecuteAsync(new CommandDefinition("""
                    with given_back as (
                        delete from receipts rc using issues i
                        where i.slug = 'week-1' and rc.issue_id = i.id and rc.subscriber_id % 100 = 0
                        returning rc.subscriber_id, rc.issue_id
                    )
                    insert into issues_owed (subscriber_id, issue_id) select subscriber_id, issue_id from given_back
                    """, commandTimeout: 0));
            }
        await using (var connection = await db.OpenConnectionAsync())
        await using (var analyze = new NpgsqlCommand("vacuum analyze", connection)) await analyze.ExecuteNonQueryAsync(); // a list of long standing: autovacuum has been through it
        seed.Stop();

        var schedule = Options.Create(new ScheduleOptions { TimeZone = "Etc/UTC", DeliveryHour = 8, MaxLateness = TimeSpan.FromHours(2) });
        var ledger = new SendLedger(db, clock, NullLogger<SendLedger>.Instance);
        var scheduler = new DigestScheduler(ledger, db, schedule, clock, NullLogger<DigestScheduler>.Instance);
        clock.Now = start.AddMinutes(-15);
        await scheduler.FireAsync(); // sets the progress mark; nothing is due yet

        // Each hour: the firing releases the zone's slot (the hour's enqueue), then batches of its
        // readers are written one after another, as the workers would ahead of their claims.
        var slices = new List<(DateTimeOffset At, int Enqueued, TimeSpan Release, TimeSpan FirstBatch, TimeSpan Written, List<double> Batches)>();
        var cpuBefore = (Postgres: PostgresCpu(dir), Own: OwnCpu());
        for (var hour = 0; hour < 24; hour++)
        {
            clock.Now = start.AddHours(hour);
            var watch = Stopwatch.StartNew();
            var released = await scheduler.FireAsync();
            var release = watch.Elapsed;
            var enqueued = 0;
            var firstBatch = TimeSpan.Zero;
            var batches = new List<double>();
            while (true)
            {
                var batchStart = watch.Elapsed;
                var (pending, written) = await ledger.WriteReleasedAsync();
                if (!pending) break;
                batches.Add((watch.Elapsed - batchStart).TotalMilliseconds);
                if (firstBatch == TimeSpan.Zero) firstBatch = watch.Elapsed;
                enqueued += written;
            }
            slices.Add((clock.Now, released > 0 ? enqueued : 0, release, firstBatch, watch.Elapsed, batches));
        }
        var cpu = (PostgresCpu(dir) - cpuBefore.Postgres) + (OwnCpu() - cpuBefore.Own);
        var total = slices.Sum(s => s.Enqueued);
        long stillOwed;
        await using (var connection = await db.OpenConnectionAsync())
            stillOwed = await connection.ExecuteScalarAsync<long>("select count(*) from issues_owed");

        // Baseline: the set-based "send now" enqueue of one slice's worth of readers.
        var sliceSize = subscribers / Zones.Length;
        await SeedAsync(db, "weekly", "weekly", sliceSize, start, null, since: start.AddDays(-7 * history - 2));
        await ReceiveHistoryAsync(db, "weekly", history);
        await using (var connection = await db.OpenConnectionAsync())
        await using (var analyze = new NpgsqlCommand("vacuum analyze", connection)) await analyze.ExecuteNonQueryAsync(); // as autovacuum would have by then
        var baseline = Stopwatch.StartNew();
        var (run, _) = await ledger.StartDigestAsync(Cadence.Weekly, null);
        baseline.Stop();

        // The floor: the bare writes of as many rows (a delivery and a receipt per reader, into the
        // same tables with the same indexes, ids known beforehand), with no reading or checking.
        TimeSpan floor;
        await using (var connection = await db.OpenConnectionAsync())
        {
            var ids = (await connection.QueryAsync<long>("select id from subscribers where cadence = 'weekly' order by id")).ToArray();
            var watch = Stopwatch.StartNew();
            await using var tx = await connection.BeginTransactionAsync();
            await connection.ExecuteAsync(new CommandDefinition("""
                with d as (
                    insert into deliveries (run_id, subscriber_id, next_attempt_at)
                    select -1, id, now() from unnest(@ids::bigint[]) as id
                    returning id, subscriber_id
                )
                insert into receipts (subscriber_id, issue_id, delivery_id) select subscriber_id, -1, id from d order by subscriber_id
                """, new { ids }, tx, commandTimeout: 0));
            await tx.CommitAsync();
            floor = watch.Elapsed;
        }

        var c = CultureInfo.InvariantCulture;
        var due = slices.Where(s => s.Enqueued > 0).ToList();
        double P50(IEnumerable<double> values) { var v = values.Order().ToList(); return v[v.Count / 2]; }
        var releaseMs = (P50(due.Select(s => s.Release.TotalMilliseconds)), due.Max(s => s.Release.TotalMilliseconds));
        var first = (P50(due.Select(s => s.FirstBatch.TotalMilliseconds)), due.Max(s => s.FirstBatch.TotalMilliseconds));
        var writtenMs = P50(due.Select(s => s.Written.TotalMilliseconds));
        var batch = (P50(due.SelectMany(s => s.Batches)), due.SelectMany(s => s.Batches).Max());
        Console.WriteLine();
        Console.WriteLine("| subscribers | issues each reader has | slices | readers per slice | the hour's enqueue (release) p50 / max | first batch written, from the hour p50 / max | batch of 1,000 p50 / max | whole slice written p50 | baseline: send-now enqueue of one slice | floor: bare insert of one slice | CPU per 1,000 readers |");
        Console.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        Console.WriteLine(string.Create(c, $"| {subscribers:N0} | {history} | {due.Count} | {total / Math.Max(due.Count, 1):N0} | {releaseMs.Item1:N0} / {releaseMs.Item2:N0} ms | {first.Item1:N0} / {first.Item2:N0} ms | {batch.Item1:N0} / {batch.Item2:N0} ms | {writtenMs:N0} ms | {baseline.Elapsed.TotalMilliseconds:N0} ms ({run.Total:N0}) | {floor.TotalMilliseconds:N0} ms | {cpu.TotalMilliseconds / Math.Max(total, 1) * 1000:N1} ms |"));
        Console.WriteLine(string.Create(c, $"ratios: whole slice written / send-now baseline {writtenMs / baseline.Elapsed.TotalMilliseconds:N2}; whole slice written / floor {writtenMs / floor.TotalMilliseconds:N2}; release p50 / floor {releaseMs.Item1 / floor.TotalMilliseconds:N3}"));
        Console.WriteLine("slices (UTC hour: release / whole slice written, ms): " + string.Join(", ", slices.Select(s => string.Create(c, $"{s.At:HH}: {s.Release.TotalMilliseconds:N0} / {s.Written.TotalMilliseconds:N0}"))));
        Console.WriteLine(string.Create(c, $"(seeded in {seed.Elapsed.TotalSeconds:N1} s; {total:N0} deliveries written over 24 hourly firings; CPU is PostgreSQL's plus this process's user+system time from /proc, releases and batches together)"));
        if (explain is not null)
        {
            var log = Path.GetFullPath("schedule-explain.log");
            File.Copy(Path.Combine(dir, "postgres", "server.log"), log, overwrite: true);
            Console.WriteLine($"plans of statements slower than {explain} ms: {log}");
        }
        if (stillOwed > 0) Console.WriteLine($"{stillOwed} owed issues were not enqueued");
        return total == subscribers && stillOwed == 0 ? 0 : 1;
    }

    /// <summary>N active readers by binary COPY, in <paramref name="zone"/>'s zones at 08:00 (or the defaults without one).</summary>
    internal static async Task SeedAsync(NpgsqlDataSource db, string prefix, string cadence, int count, DateTimeOffset start, Func<int, string>? zone,
        DateTimeOffset? since = null)
    {
        var joined = (since ?? start.AddDays(-2)).UtcDateTime;
        await using var connection = await db.OpenConnectionAsync();
        await using var copy = await connection.BeginBinaryImportAsync(
            "copy subscribers (email, cadence, language, status, confirmed_at, issues_from, time_zone, delivery_hour) from stdin (format binary)");
        for (var i = 0; i < count; i++)
        {
            await copy.StartRowAsync();
            await copy.WriteAsync($"{prefix}{i}@example.org", NpgsqlDbType.Text);
            await copy.WriteAsync(cadence, NpgsqlDbType.Text);
            await copy.WriteAsync("en", NpgsqlDbType.Text);
            await copy.WriteAsync("active", NpgsqlDbType.Text);
            await copy.WriteAsync(joined, NpgsqlDbType.TimestampTz);
            await copy.WriteAsync(joined, NpgsqlDbType.TimestampTz);
            if (zone is null) { await copy.WriteNullAsync(); await copy.WriteNullAsync(); }
            else { await copy.WriteAsync(zone(i), NpgsqlDbType.Text); await copy.WriteAsync((short)8, NpgsqlDbType.Smallint); }
        }
        await copy.CompleteAsync();
    }

    /// <summary>Receipts of every history issue (<c>week-N</c>) for every reader of <paramref name="cadence"/>, an issue at a time.</summary>
    private static async Task ReceiveHistoryAsync(NpgsqlDataSource db, string cadence, int history)
    {
        await using var connection = await db.OpenConnectionAsync();
        for (var week = 1; week <= history; week++)
            await connection.ExecuteAsync(new CommandDefinition("""
                insert into receipts (subscriber_id, issue_id, delivery_id)
                select s.id, i.id, 0 from subscribers s, issues i where s.cadence = @cadence and i.slug = @slug order by s.id
                """, new { cadence, slug = $"week-{week}" }, commandTimeout: 0));
    }

    private sealed class SetClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;
        public override DateTimeOffset GetUtcNow() => Now;
    }

    private static TimeSpan OwnCpu() => TimeSpan.FromSeconds(DeliveryBenchmark.Ticks(Environment.ProcessId, withChildren: false) / 100.0);

    private static TimeSpan PostgresCpu(string dataDirectory) => TimeSpan.FromSeconds(DeliveryBenchmark.PostgresCpuSeconds(dataDirectory));
}
