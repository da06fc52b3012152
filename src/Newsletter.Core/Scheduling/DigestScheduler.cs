using Dapper;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Npgsql;

namespace Newsletter.Scheduling;

/// <summary>
/// The local-time schedule. Each firing (every quarter hour, so zones whose offset ends in :30 or
/// :45 are on time) releases the slots whose local delivery hour began since the previous firing
/// into the run of their cadence and local period (<see cref="LocalDelivery"/>): a row per slot,
/// whose readers' deliveries the workers then write a batch at a time
/// (<see cref="SendLedger.WriteReleasedAsync"/>). How far it got is stored with the release in one
/// transaction under a row lock: two processes firing at once make one release, and after downtime
/// the next firing covers everything missed once, except hours older than <c>MaxLateness</c>, which
/// are skipped with a log line (their issues go in the next digest).
/// </summary>
public sealed class DigestScheduler(
    SendLedger ledger, NpgsqlDataSource db, IOptions<ScheduleOptions> options, TimeProvider clock, ILogger<DigestScheduler> logger)
{
    private const string Progress = "local-time";

    /// <summary>How often the schedule fires.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(15);

    /// <summary>Releases every delivery time that came due up to <paramref name="until"/> (default: now); returns how many readers they hold.</summary>
    public async Task<int> FireAsync(DateTimeOffset? until = null, CancellationToken ct = default)
    {
        var o = options.Value;
        var now = clock.GetUtcNow();
        var end = until is { } u && u < now ? u : now;
        int released;
        IReadOnlyList<long> runs;
        await using (var connection = await db.OpenConnectionAsync(ct))
        await using (var tx = await connection.BeginTransactionAsync(ct))
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "insert into schedule_progress (name, covered_until) values (@Progress, @start) on conflict do nothing",
                new { Progress, start = (end - Interval).UtcDateTime }, tx, cancellationToken: ct));
            var covered = new DateTimeOffset(await connection.ExecuteScalarAsync<DateTime>(new CommandDefinition(
                "select covered_until from schedule_progress where name = @Progress for update", new { Progress }, tx, cancellationToken: ct)), TimeSpan.Zero);
            if (covered >= end) return 0; // another process (or an earlier firing) got here first
            var from = covered;
            if (from < now - o.MaxLateness)
            {
                logger.LogWarning("Skipped the delivery times between {From:u} and {To:u}: more than Newsletter__Schedule__MaxLateness ({Max}) ago; their issues go in the next digest",
                    from, now - o.MaxLateness, o.MaxLateness);
                from = now - o.MaxLateness;
            }
            // The zones readers chose, by a skip scan of the slot index (a few hundred index probes, not a pass over the list).
            var zones = (await connection.QueryAsync<string>(new CommandDefinition("""
                with recursive zones (cadence, zone) as (
                    select c, (select min(time_zone) from subscribers where status = 'active' and cadence = c)
                    from unnest(array['daily', 'weekly']) as c
                    union all
                    select cadence, (select min(time_zone) from subscribers where status = 'active' and cadence = zones.cadence and time_zone > zones.zone)
                    from zones where zone is not null
                )
                select distinct zone from zones where zone is not null
                """, transaction: tx, cancellationToken: ct)))
                .Append(o.TimeZone);
            var slots = LocalDelivery.DueBetween(zones, from, end);
            (runs, released) = await ledger.ReleaseSlotsAsync(connection, tx, slots, o.Defaults, ct);
            await connection.ExecuteAsync(new CommandDefinition("update schedule_progress set covered_until = @end where name = @Progress",
                new { Progress, end = end.UtcDateTime }, tx, cancellationToken: ct));
            await tx.CommitAsync(ct);
        }
        if (released > 0) logger.LogInformation("Released the delivery times of {Count} readers that came due up to {End:u}", released, end);
        await ledger.TryCompleteAsync([.. runs, .. await ledger.ClosingRunsAsync(ct)], ct);
        return released;
    }
}
