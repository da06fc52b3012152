using Dapper;
using Microsoft.Extensions.Logging;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Validation;
using Npgsql;

namespace Newsletter.Delivery;

/// <summary>
/// The delivery ledger: runs, their deliveries, and the receipts that record which issue went to
/// which subscriber. Every operation is idempotent: starting the same run twice returns the first,
/// enqueueing a run twice adds nothing, and the receipts' primary key (subscriber, issue) makes a
/// second delivery of an issue impossible, whatever runs race.
/// </summary>
public sealed class SendLedger(NpgsqlDataSource db, TimeProvider clock, ILogger<SendLedger> logger)
{
    /// <summary>
    /// Starts the digest run of <paramref name="cadence"/> for a scheduled <paramref name="period"/>
    /// (or, with no period, an admin's run now) and enqueues it. A run that already exists for the
    /// period, or an open run of the cadence, is returned instead of a new one.
    /// </summary>
    public async Task<(RunSummary Run, bool Created)> StartDigestAsync(Cadence cadence, DateOnly? period, CancellationToken ct = default)
    {
        var kind = Wire.Name(cadence);
        await using var connection = await db.OpenConnectionAsync(ct);
        // ON CONFLICT without a target covers both guards: one run per period, one open run per cadence.
        var created = await connection.ExecuteScalarAsync<long?>(new CommandDefinition("""
            insert into runs (kind, period, created_at) values (@kind, @period, @now)
            on conflict do nothing
            returning id
            """, new { kind, period = period?.ToDateTime(TimeOnly.MinValue), now = Now() }, cancellationToken: ct));
        var id = created ?? await connection.ExecuteScalarAsync<long?>(new CommandDefinition("""
            select id from runs
            where kind = @kind and ((@period::date is not null and period = @period::date) or status in ('sending', 'paused'))
            order by (status in ('sending', 'paused')) desc, id desc
            limit 1
            """, new { kind, period = period?.ToDateTime(TimeOnly.MinValue) }, cancellationToken: ct))
            ?? throw new InvalidOperationException($"No {kind} run could be created or found");
        if (created is not null)
            logger.LogInformation("Run {RunId} ({Kind}) started for period {Period}", id, kind, period?.ToString("yyyy-MM-dd") ?? "now");
        await EnqueueAsync(id, ct);
        return ((await GetAsync(id, ct))!, created is not null);
    }

    /// <summary>Broadcasts a published issue now to every active subscriber who has not received it.</summary>
    /// <exception cref="NotFoundException">No issue has this slug.</exception>
    /// <exception cref="ConflictException">The issue is a draft.</exception>
    public async Task<(RunSummary Run, bool Created)> StartBroadcastAsync(string slug, CancellationToken ct = default)
    {
        if (!IssueDocument.IsSlug(slug)) throw new NotFoundException("issue", $"no issue is called '{TextRules.Shorten(slug)}'");
        await using var connection = await db.OpenConnectionAsync(ct);
        var issue = await connection.QuerySingleOrDefaultAsync<(long Id, string Status)?>(new CommandDefinition(
            "select id, status from issues where slug = @slug", new { slug }, cancellationToken: ct))
            ?? throw new NotFoundException("issue", $"no issue is called '{slug}'");
        if (issue.Status != "published")
            throw new ConflictException("issue", $"issue '{slug}' is a draft; publish it before sending it");
        var created = await connection.ExecuteScalarAsync<long?>(new CommandDefinition("""
            insert into runs (kind, issue_id, created_at) values ('broadcast', @id, @now)
            on conflict do nothing
            returning id
            """, new { issue.Id, now = Now() }, cancellationToken: ct));
        var id = created ?? await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "select id from runs where kind = 'broadcast' and issue_id = @Id and status in ('sending', 'paused') order by id desc limit 1",
            new { issue.Id }, cancellationToken: ct));
        if (created is not null)
            logger.LogInformation("Run {RunId} (broadcast of {Slug}) started", id, slug);
        await EnqueueAsync(id, ct);
        return ((await GetAsync(id, ct))!, created is not null);
    }

    /// <summary>
    /// Queues the run's deliveries set-based (no per-subscriber round trips): for a digest, each active subscriber
    /// of the cadence with published issues they have not received (published since they became
    /// active, and before the run started); for a broadcast, every active subscriber without the
    /// issue. Receipts are written in the same transaction; a receipt another run already holds wins,
    /// and a delivery left without any is skipped when it is claimed.
    /// </summary>
    public async Task EnqueueAsync(long runId, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var run = await connection.QuerySingleAsync<(string Kind, long? IssueId, DateTime CreatedAt, string Status)>(new CommandDefinition(
            "select kind, issue_id, created_at, status from runs where id = @runId for update", new { runId }, tx, cancellationToken: ct));
        if (run.Status is not ("sending" or "paused")) return;

        var eligible = run.Kind == "broadcast"
            ? """
              select s.id as subscriber_id, @issueId::bigint as issue_id
              from subscribers s
              where s.status = 'active'
                and not exists (select 1 from receipts r where r.subscriber_id = s.id and r.issue_id = @issueId::bigint)
              """
            : """
              select s.id as subscriber_id, i.id as issue_id
              from subscribers s
              join issues i on i.status = 'published' and i.published_at >= s.issues_from and i.published_at <= @cutoff
              where s.status = 'active' and s.cadence = @kind
                and not exists (select 1 from receipts r where r.subscriber_id = s.id and r.issue_id = i.id)
              """;
        var args = new { runId, issueId = run.IssueId, cutoff = run.CreatedAt, kind = run.Kind };
        // Two statements in one transaction: joining the inserted deliveries back through their
        // unique (run_id, subscriber_id) index keeps this linear; a join of two CTEs was planned
        // as a nested loop (quadratic) on fresh tables.
        await connection.ExecuteAsync(new CommandDefinition($"""
            insert into deliveries (run_id, subscriber_id, next_attempt_at)
            select distinct @runId, subscriber_id, @cutoff from ({eligible}) eligible
            on conflict (run_id, subscriber_id) do nothing
            """, args, tx, cancellationToken: ct, commandTimeout: 600));
        await connection.ExecuteAsync(new CommandDefinition($"""
            insert into receipts (subscriber_id, issue_id, delivery_id)
            select e.subscriber_id, e.issue_id, d.id
            from ({eligible}) e
            join deliveries d on d.run_id = @runId and d.subscriber_id = e.subscriber_id
            on conflict do nothing
            """, args, tx, cancellationToken: ct, commandTimeout: 600));
        var total = await connection.ExecuteScalarAsync<int>(new CommandDefinition("""
            update runs set total = (select count(*) from deliveries where run_id = @runId) where id = @runId returning total
            """, new { runId }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        logger.LogInformation("Run {RunId} enqueued {Total} deliveries", runId, total);
        await TryCompleteAsync([runId], ct);
    }

    /// <summary>Marks done every given run that is sending and has nothing left to send.</summary>
    public async Task TryCompleteAsync(IReadOnlyCollection<long> runIds, CancellationToken ct = default)
    {
        if (runIds.Count == 0) return;
        await using var connection = await db.OpenConnectionAsync(ct);
        var done = await connection.QueryAsync<long>(new CommandDefinition("""
            update runs r set status = 'done', finished_at = @now
            where r.id = any(@ids) and r.status = 'sending'
              and not exists (select 1 from deliveries d where d.run_id = r.id and d.status in ('queued', 'claimed', 'sending', 'retrying'))
            returning r.id
            """, new { ids = runIds.ToArray(), now = Now() }, cancellationToken: ct));
        foreach (var id in done) logger.LogInformation("Run {RunId} done", id);
    }

    public async Task<RunSummary?> GetAsync(long id, CancellationToken ct = default) =>
        (await QueryAsync("where r.id = @id", new { id }, ct)).SingleOrDefault();

    /// <summary>The most recent runs, newest first.</summary>
    public Task<IReadOnlyList<RunSummary>> ListAsync(int limit = 20, CancellationToken ct = default) =>
        QueryAsync("order by r.id desc limit @limit", new { limit }, ct);

    /// <exception cref="NotFoundException">No run has this id.</exception>
    /// <exception cref="ConflictException">The run is finished.</exception>
    public Task<RunSummary> PauseAsync(long id, string reason, CancellationToken ct = default) =>
        ChangeAsync(id, "paused", ["sending"], "pause_reason = @reason", reason, ct);

    public async Task<RunSummary> ResumeAsync(long id, CancellationToken ct = default)
    {
        var run = await ChangeAsync(id, "sending", ["paused", "sending"], "pause_reason = null", null, ct);
        // Everything may have been settled while it was paused (its subscribers left, say).
        await TryCompleteAsync([id], ct);
        return (await GetAsync(id, ct)) ?? run;
    }

    /// <summary>
    /// Cancels a run: nothing more of it is sent. Its unsent deliveries give their issues back, so
    /// those subscribers get them in their next digest.
    /// </summary>
    public async Task<RunSummary> CancelAsync(long id, CancellationToken ct = default)
    {
        var run = await ChangeAsync(id, "cancelled", ["sending", "paused"], "finished_at = @now", null, ct);
        await using var connection = await db.OpenConnectionAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition("""
            with cancelled as (
                update deliveries set status = 'cancelled', lease_until = null, updated_at = @now
                where run_id = @id and status in ('queued', 'claimed', 'retrying')
                returning id
            )
            delete from receipts where delivery_id in (select id from cancelled)
            """, new { id, now = Now() }, cancellationToken: ct));
        return (await GetAsync(id, ct))!;
    }

    /// <summary>
    /// Re-queues a run's failed or uncertain deliveries, deliberately: an uncertain message may
    /// already be in the subscriber's mailbox. Reopens the run if it was done.
    /// </summary>
    /// <exception cref="NotFoundException">No run has this id.</exception>
    /// <exception cref="ConflictException">The run was cancelled, or another run of its cadence is open.</exception>
    public async Task<(RunSummary Run, int Requeued)> ResendAsync(long id, bool failed, bool uncertain, CancellationToken ct = default)
    {
        var states = new List<string>();
        if (failed) states.Add("failed");
        if (uncertain) states.Add("uncertain");
        if (states.Count == 0) throw new InputException("--failed/--uncertain", "say which deliveries to send again");
        var run = await GetAsync(id, ct) ?? throw new NotFoundException("run", $"no run has id {id}");
        if (run.Status == "cancelled") throw new ConflictException("run", $"run {id} was cancelled");
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        try
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "update runs set status = 'sending', finished_at = null where id = @id and status = 'done'", new { id }, tx, cancellationToken: ct));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            throw new ConflictException("run", $"another {run.Kind} run is open; resend when it is finished");
        }
        // A subscriber who bounced or left since is cancelled at claim time, as always.
        var requeued = await connection.ExecuteAsync(new CommandDefinition("""
            update deliveries set status = 'queued', attempts = 0, next_attempt_at = @now, lease_until = null, updated_at = @now
            where run_id = @id and status = any(@states)
            """, new { id, states = states.ToArray(), now = Now() }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        logger.LogInformation("Run {RunId}: {Count} deliveries queued again ({States})", id, requeued, string.Join(", ", states));
        await TryCompleteAsync([id], ct);
        return ((await GetAsync(id, ct))!, requeued);
    }

    private async Task<RunSummary> ChangeAsync(long id, string to, string[] from, string set, string? reason, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        var changed = await connection.ExecuteAsync(new CommandDefinition(
            $"update runs set status = @to, {set} where id = @id and status = any(@from)",
            new { id, to, from, reason, now = Now() }, cancellationToken: ct));
        var run = await GetAsync(id, ct) ?? throw new NotFoundException("run", $"no run has id {id}");
        if (changed == 0 && run.Status != to)
            throw new ConflictException("run", $"run {id} is {run.Status}");
        if (changed > 0) logger.LogInformation("Run {RunId} is now {Status}", id, to);
        if (to == "sending") await TryCompleteAsync([id], ct);
        return (await GetAsync(id, ct))!;
    }

    private async Task<IReadOnlyList<RunSummary>> QueryAsync(string tail, object args, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return (await connection.QueryAsync<RunSummary>(new CommandDefinition($"""
            select r.id, r.kind, r.status, i.slug as issue, r.period, r.pause_reason, r.total,
                   r.created_at as started_at, r.finished_at,
                   coalesce(c.queued, 0) as queued, coalesce(c.sent, 0) as sent, coalesce(c.retrying, 0) as retrying,
                   coalesce(c.failed, 0) as failed, coalesce(c.uncertain, 0) as uncertain,
                   coalesce(c.cancelled, 0) as cancelled, coalesce(c.skipped, 0) as skipped
            from runs r
            left join issues i on i.id = r.issue_id
            left join lateral (
                select count(*) filter (where status in ('queued', 'claimed', 'sending')) as queued,
                       count(*) filter (where status = 'sent') as sent,
                       count(*) filter (where status = 'retrying') as retrying,
                       count(*) filter (where status = 'failed') as failed,
                       count(*) filter (where status = 'uncertain') as uncertain,
                       count(*) filter (where status = 'cancelled') as cancelled,
                       count(*) filter (where status = 'skipped') as skipped
                from deliveries d where d.run_id = r.id
            ) c on true
            {tail}
            """, args, cancellationToken: ct))).ToList();
    }

    private DateTime Now() => clock.GetUtcNow().UtcDateTime;
}
