using Dapper;
using Npgsql;

namespace Newsletter.Delivery;

/// <summary>One delivery as an admin sees it.</summary>
public sealed record DeliveryRow(long Id, long RunId, string RunKind, string Email, string Status, int Attempts, string? LastError,
    string? MessageId, DateTime? SentAt, DateTime UpdatedAt);

/// <summary>How fast a run goes, and when it should be done at that pace.</summary>
public sealed record RunProgress(double MessagesPerSecond, int Remaining, int? EtaSeconds);

/// <summary>A day and a number, for the dashboard's charts.</summary>
public sealed record DayCount(DateOnly Day, long Count);

/// <summary>
/// Read-only views of the ledger for admins: a run's deliveries by state (with the SMTP replies),
/// "who got issue X", a run's pace, and daily series for the charts. Every list is keyset-paged.
/// </summary>
public sealed class SendReports(NpgsqlDataSource db, TimeProvider clock)
{
    private static readonly string Sent = LedgerStates.Sql(DeliveryStatus.Sent);

    private const string RowColumns = """
        d.id, d.run_id, r.kind as run_kind, coalesce(s.email, '(erased)') as email, d.status, d.attempts, d.last_error, d.message_id, d.sent_at, d.updated_at
        """;

    /// <summary>A run's deliveries, optionally of one state, in id order after <paramref name="after"/>.</summary>
    public async Task<IReadOnlyList<DeliveryRow>> DeliveriesAsync(long runId, DeliveryStatus? state, long after, int limit, CancellationToken ct = default)
    {
        var status = state is { } s ? LedgerStates.Name(s) : null;
        await using var connection = await db.OpenConnectionAsync(ct);
        return (await connection.QueryAsync<DeliveryRow>(new CommandDefinition($"""
            select {RowColumns}
            from deliveries d join runs r on r.id = d.run_id left join subscribers s on s.id = d.subscriber_id
            where d.run_id = @runId and d.id > @after and (@status::text is null or d.status = @status::text)
            order by d.id limit @limit
            """, new { runId, status, after, limit }, cancellationToken: ct))).ToList();
    }

    /// <summary>Who got (or is to get) an issue: its deliveries, optionally for one address.</summary>
    public async Task<IReadOnlyList<DeliveryRow>> IssueDeliveriesAsync(long issueId, string? email, long after, int limit, CancellationToken ct = default)
    {
        if (!string.IsNullOrEmpty(email)) email = Validation.EmailAddress.Parse("email", email);
        await using var connection = await db.OpenConnectionAsync(ct);
        return (await connection.QueryAsync<DeliveryRow>(new CommandDefinition($"""
            select {RowColumns}
            from receipts rc join deliveries d on d.id = rc.delivery_id join runs r on r.id = d.run_id join subscribers s on s.id = d.subscriber_id
            where rc.issue_id = @issueId and d.id > @after and (@email::text is null or lower(s.email) = lower(@email::text))
            order by d.id limit @limit
            """, new { issueId, email, after, limit }, cancellationToken: ct))).ToList();
    }

    /// <summary>The pace of a run over the last minute, and the time left at that pace.</summary>
    public async Task<RunProgress> ProgressAsync(long runId, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        var (recent, remaining) = await connection.QuerySingleAsync<(long, int)>(new CommandDefinition($"""
            select count(*) filter (where status = {Sent} and sent_at > @since),
                   count(*) filter (where status in ({SendLedger.OpenDeliveryStates}))::int
            from deliveries where run_id = @runId
            """, new { runId, since = clock.GetUtcNow().UtcDateTime.AddMinutes(-1) }, cancellationToken: ct));
        var rate = recent / 60.0;
        return new RunProgress(Math.Round(rate, 2), remaining, rate > 0 ? (int)Math.Ceiling(remaining / rate) : null);
    }

    /// <summary>Messages sent per day over the last <paramref name="days"/> days (UTC), zeros included: one pass over the ledger.</summary>
    public async Task<IReadOnlyList<DayCount>> SentPerDayAsync(int days, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        var today = clock.GetUtcNow().UtcDateTime.Date;
        return (await connection.QueryAsync<(DateTime, long)>(new CommandDefinition($"""
            with sent as (
                select date_trunc('day', sent_at, 'UTC') as day, count(*) as n
                from deliveries where status = {Sent} and sent_at >= @from group by 1
            )
            select day, coalesce((select n from sent where sent.day = days.day), 0)
            from generate_series(@from::timestamptz, @to::timestamptz, interval '1 day') as days(day) order by day
            """, new { from = today.AddDays(1 - days), to = today }, cancellationToken: ct)))
            .Select(r => new DayCount(DateOnly.FromDateTime(r.Item1), r.Item2)).ToList();
    }

    /// <summary>
    /// Active subscribers at the end of each of the last <paramref name="days"/> days (UTC): those
    /// confirmed by then, less those of them who had left by then, from one pass over the list.
    /// </summary>
    public async Task<IReadOnlyList<DayCount>> SubscribersPerDayAsync(int days, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        var today = clock.GetUtcNow().UtcDateTime.Date;
        return (await connection.QueryAsync<(DateTime, long)>(new CommandDefinition("""
            with changes as (
                select date_trunc('day', confirmed_at, 'UTC') as joined, date_trunc('day', unsubscribed_at, 'UTC') as left_on
                from subscribers where status in ('active', 'unsubscribed') and confirmed_at is not null
            ),
            joined as (select joined as day, count(*) as n from changes group by 1),
            gone as (select left_on as day, count(*) as n from changes where left_on is not null group by 1)
            select days.day,
                   coalesce((select sum(n) from joined where joined.day <= days.day), 0)::bigint
                 - coalesce((select sum(n) from gone where gone.day <= days.day), 0)::bigint
            from generate_series(@from::timestamptz, @to::timestamptz, interval '1 day') as days(day) order by days.day
            """, new { from = today.AddDays(1 - days), to = today }, cancellationToken: ct)))
            .Select(r => new DayCount(DateOnly.FromDateTime(r.Item1), r.Item2)).ToList();
    }
}
