using Dapper;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Subscribers;
using Npgsql;
using Quartz;

namespace Newsletter.Scheduling;

/// <summary>When the daily and weekly digests fire: the configured cron expressions in the configured zone.</summary>
public static class DigestSchedule
{
    public static CronExpression Cron(ScheduleOptions options, Cadence cadence) =>
        new(cadence == Cadence.Daily ? options.Daily : options.Weekly, options.Zone);

    /// <summary>The cadence's next scheduled firing after <paramref name="at"/>.</summary>
    public static DateTimeOffset? NextFiringAfter(ScheduleOptions options, Cadence cadence, DateTimeOffset at) =>
        Cron(options, cadence).GetNextValidTimeAfter(at);
}

/// <summary>
/// Turns a firing of the daily or weekly schedule into a run. A period is identified by the local
/// date of its scheduled firing in the schedule's time zone, so however often a period fires (a
/// retried job, two nodes, the repeated hour when clocks go back) it gets one run. A firing older
/// than <c>MaxLateness</c> is skipped with a log line, and after downtime only the latest missed
/// period is considered, never one run per missed firing.
/// </summary>
public sealed class DigestScheduler(
    SendLedger ledger, NpgsqlDataSource db, IOptions<ScheduleOptions> options, TimeProvider clock, ILogger<DigestScheduler> logger)
{
    public CronExpression Cron(Cadence cadence) => DigestSchedule.Cron(options.Value, cadence);

    /// <summary>The period (local date in the schedule's zone) a firing at <paramref name="scheduledUtc"/> belongs to.</summary>
    public DateOnly PeriodOf(DateTimeOffset scheduledUtc) =>
        DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(scheduledUtc, options.Value.Zone).DateTime);

    /// <summary>
    /// Handles the schedule firing for <paramref name="cadence"/> that was due at
    /// <paramref name="scheduledUtc"/>; returns the run, or null when the firing was too late.
    /// </summary>
    public async Task<RunSummary?> FireAsync(Cadence cadence, DateTimeOffset scheduledUtc, CancellationToken ct = default)
    {
        var period = PeriodOf(scheduledUtc);
        var lateness = clock.GetUtcNow() - scheduledUtc;
        if (lateness > options.Value.MaxLateness)
        {
            if (!await HasRunAsync(cadence, period, ct))
                logger.LogWarning("Skipped the {Cadence} digest of {Period}: due at {Due:u}, now {Lateness} late (Newsletter__Schedule__MaxLateness is {Max})",
                    Wire.Name(cadence), period.ToString("yyyy-MM-dd"), scheduledUtc, lateness, options.Value.MaxLateness);
            return null;
        }
        var (run, _) = await ledger.StartDigestAsync(cadence, period, ct);
        return run;
    }

    /// <summary>
    /// At start-up: for each cadence, the latest firing that should already have happened is run
    /// now if it has no run yet and is recent enough. Earlier missed firings are not replayed.
    /// </summary>
    public async Task CatchUpAsync(CancellationToken ct = default)
    {
        foreach (var cadence in new[] { Cadence.Daily, Cadence.Weekly })
        {
            if (LastFiringAtOrBefore(cadence, clock.GetUtcNow()) is not { } last) continue;
            if (await HasRunAsync(cadence, PeriodOf(last), ct)) continue;
            await FireAsync(cadence, last, ct);
        }
    }

    /// <summary>The latest scheduled firing at or before <paramref name="at"/> (looking back at most 8 days).</summary>
    public DateTimeOffset? LastFiringAtOrBefore(Cadence cadence, DateTimeOffset at)
    {
        var cron = Cron(cadence);
        DateTimeOffset? last = null;
        for (var next = cron.GetNextValidTimeAfter(at.AddDays(-8)); next is { } n && n <= at; next = cron.GetNextValidTimeAfter(n))
            last = n;
        return last;
    }

    private async Task<bool> HasRunAsync(Cadence cadence, DateOnly period, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "select exists (select 1 from runs where kind = @kind and period = @period::date)",
            new { kind = Wire.Name(cadence), period = period.ToDateTime(TimeOnly.MinValue) }, cancellationToken: ct));
    }
}
