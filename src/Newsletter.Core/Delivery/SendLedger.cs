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
    // The state words, from their one mapping (LedgerStates).
    private static readonly string Queued = LedgerStates.Sql(DeliveryStatus.Queued);
    private static readonly string Claimed = LedgerStates.Sql(DeliveryStatus.Claimed);
    private static readonly string Sending = LedgerStates.Sql(DeliveryStatus.Sending);
    private static readonly string Sent = LedgerStates.Sql(DeliveryStatus.Sent);
    private static readonly string Retrying = LedgerStates.Sql(DeliveryStatus.Retrying);
    private static readonly string Failed = LedgerStates.Sql(DeliveryStatus.Failed);
    private static readonly string Uncertain = LedgerStates.Sql(DeliveryStatus.Uncertain);
    private static readonly string Cancelled = LedgerStates.Sql(DeliveryStatus.Cancelled);
    private static readonly string Skipped = LedgerStates.Sql(DeliveryStatus.Skipped);
    private static readonly string OpenDeliveries = LedgerStates.Sql(LedgerStates.Open);
    private static readonly string UnstartedDeliveries = LedgerStates.Sql(LedgerStates.Unstarted);
    private static readonly string DueDeliveries = LedgerStates.Sql(LedgerStates.Due);
    private static readonly string RunSending = LedgerStates.Sql(RunStatus.Sending);
    private static readonly string Done = LedgerStates.Sql(RunStatus.Done);
    private static readonly string OpenRuns = LedgerStates.Sql(LedgerStates.OpenRuns);

    /// <summary>SQL that any reader of the ledger may need: a run's deliveries still to settle.</summary>
    public static string OpenDeliveryStates => OpenDeliveries;

    /// <summary>SQL: the states a worker may claim.</summary>
    public static string DueDeliveryStates => DueDeliveries;

    /// <summary>
    /// SQL: a scalar subquery, the readers of the run <paramref name="run"/> (an alias of <c>runs</c>)
    /// whose delivery time was released and whose deliveries are still to be written.
    /// </summary>
    public static string UnwrittenReaders(string run) =>
        $"(select coalesce(sum(greatest(sl.readers - sl.taken, 0)), 0)::int from run_slots sl where sl.run_id = {run}.id and not sl.done)";

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
        var id = created ?? await connection.ExecuteScalarAsync<long?>(new CommandDefinition($"""
            select id from runs
            where kind = @kind and ((@period::date is not null and period = @period::date) or (@period::date is null and period is null and status in ({OpenRuns})))
            order by (status in ({OpenRuns})) desc, id desc
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
            $"select id from runs where kind = 'broadcast' and issue_id = @Id and status in ({OpenRuns}) order by id desc limit 1",
            new { issue.Id }, cancellationToken: ct));
        if (created is not null)
            logger.LogInformation("Run {RunId} (broadcast of {Slug}) started", id, slug);
        await EnqueueAsync(id, ct);
        return ((await GetAsync(id, ct))!, created is not null);
    }

    /// <summary>
    /// Queues the run's deliveries set-based (no per-subscriber round trips): for a digest, each active subscriber
    /// of the cadence with published issues they lack (published since they became active, and
    /// before the run started); for a broadcast, every active subscriber without the issue, whose
    /// older unreceived issues it passes over become owed to them (<c>issues_owed</c>). Receipts are
    /// written in the same statement; a receipt another run already holds wins, and a delivery left
    /// without any is skipped when it is claimed.
    /// </summary>
    public async Task EnqueueAsync(long runId, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var run = await connection.QuerySingleAsync<(string Kind, long? IssueId, DateTime CreatedAt, string Status)>(new CommandDefinition(
            "select kind, issue_id, created_at, status from runs where id = @runId for update", new { runId }, tx, cancellationToken: ct));
        if (!LedgerStates.OpenRuns.Contains(LedgerStates.ParseRun(run.Status))) return;
        await connection.ExecuteAsync(new CommandDefinition(ProbingSettings, transaction: tx, cancellationToken: ct));

        var args = new { runId, issueId = run.IssueId, cutoff = run.CreatedAt, kind = run.Kind };
        // One statement: every check reads the ledger as it was before any of this run's rows are
        // written (checked after, on a young receipts table, the probes were planned as scans of
        // the rows being written: quadratic).
        var sql = run.Kind == "broadcast"
            ? $"""
              with readers as (
                  select s.id, s.issues_from from subscribers s
                  where s.status = 'active'
                    and not exists (select 1 from receipts r where r.issue_id = @issueId::bigint and r.subscriber_id = s.id)
              ),
              inserted as (
                  insert into deliveries (run_id, subscriber_id, next_attempt_at)
                  select @runId, r.id, @cutoff from readers r
                  order by r.id
                  on conflict (run_id, subscriber_id) do nothing
                  returning id, subscriber_id
              ),
              receipted as (
                  insert into receipts (subscriber_id, issue_id, delivery_id)
                  select ins.subscriber_id, @issueId::bigint, ins.id from inserted ins
                  order by ins.subscriber_id
                  on conflict do nothing
              ),
              -- What the broadcast passes over: each reader's unreceived issues published before it
              -- (newer than what they hold), which the next digest still owes them.
              passed as (
                  insert into issues_owed (subscriber_id, issue_id)
                  select r.id, i.id
                  from readers r
                  join inserted ins on ins.subscriber_id = r.id
                  cross join (select published_at from issues where id = @issueId::bigint) x
                  {Anchor("r", "< x.published_at")}
                  join issues i on i.status = 'published' and i.published_at >= r.issues_from and i.published_at < x.published_at
                                and i.published_at > coalesce(anchor.published_at, '-infinity')
                  on conflict do nothing
              )
              select count(*) from inserted
              """
            : $"""
              with wanted as (
                  select s.id as subscriber_id, lacking.issue_id, lacking.owed
                  from subscribers s
                  {Lacking("s", "@cutoff")}
                  where s.status = 'active' and s.cadence = @kind
              ),
              inserted as (
                  insert into deliveries (run_id, subscriber_id, next_attempt_at)
                  select distinct @runId, subscriber_id, @cutoff::timestamptz from wanted
                  order by 2
                  on conflict (run_id, subscriber_id) do nothing
                  returning id, subscriber_id
              ),
              {Receipted}
              select count(*) from inserted
              """;
        await connection.ExecuteAsync(new CommandDefinition(sql, args, tx, cancellationToken: ct, commandTimeout: 600));
        var total = await connection.ExecuteScalarAsync<int>(new CommandDefinition("""
            update runs set total = (select count(*) from deliveries where run_id = @runId) where id = @runId returning total
            """, new { runId }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        logger.LogInformation("Run {RunId} enqueued {Total} deliveries", runId, total);
        await TryCompleteAsync([runId], ct);
    }

    // The enqueues probe tiny tables (issues, issues_owed) once per reader: a scan of fifty issues
    // looks cheaper to the planner than an index probe, but it is repeated a million times, and
    // only the index walks newest-first and stops at the reader's anchor. Compiling these short,
    // frequent statements with LLVM would cost more than running them.
    private const string ProbingSettings = "set local enable_seqscan = off; set local jit = off";
    private const string DefaultSettings = "set local enable_seqscan to default; set local jit to default";

    /// <summary>
    /// SQL: lateral joins that give, for each row of <paramref name="reader"/> (a subscriber's
    /// <c>id</c> and <c>issues_from</c>), the published issues up to <paramref name="cutoff"/> they
    /// lack, as <c>lacking.issue_id</c>, with <c>lacking.owed</c> for one listed in <c>issues_owed</c>.
    /// Never a probe per issue of their history: the reader's anchor is the newest issue of their
    /// window they hold (a receipt), found walking the issues newest-first; they lack every issue
    /// published after it (publication times are strictly increasing, in the order issues were
    /// published, so each of those was probed on the way down and missed), and of the issues before
    /// it only those owed to them, written where such a gap is made (receipts given back, a
    /// broadcast passing over older issues).
    /// </summary>
    private static string Lacking(string reader, string cutoff) => $"""
        {Anchor(reader, $"<= {cutoff}")}
        cross join lateral (
            select i.id as issue_id, false as owed from issues i
            where i.status = 'published' and i.published_at <= {cutoff} and i.published_at >= {reader}.issues_from
              and i.published_at > coalesce(anchor.published_at, '-infinity')
            union all
            -- Driven by the reader's owed rows (almost always none): a join with issues was planned
            -- as a probe of issues_owed per published issue, per reader.
            select o.issue_id, true from issues_owed o
            where (select exists (select 1 from issues_owed)) and o.subscriber_id = {reader}.id
              and (select i.published_at >= {reader}.issues_from and i.published_at < anchor.published_at from issues i where i.id = o.issue_id)
              and not exists (select 1 from receipts rc where rc.issue_id = o.issue_id and rc.subscriber_id = {reader}.id)
        ) lacking
        """;

    /// <summary>
    /// SQL: a lateral join giving <c>anchor.published_at</c>, the publication time of the newest issue
    /// of <paramref name="reader"/>'s window published <paramref name="before"/> (a comparison with
    /// the issue's <c>published_at</c>) that they hold a receipt for; null when they hold none.
    /// Walks the issues newest-first and stops at the first receipt.
    /// </summary>
    private static string Anchor(string reader, string before) => $"""
        left join lateral (
            select a.published_at from issues a
            where a.status = 'published' and a.published_at >= {reader}.issues_from and a.published_at {before}
              and exists (select 1 from receipts rc where rc.issue_id = a.id and rc.subscriber_id = {reader}.id)
            order by a.published_at desc
            limit 1
        ) anchor on true
        """;

    /// <summary>
    /// SQL (CTEs after <c>wanted</c> and <c>inserted</c>): the receipts of the deliveries just made, in
    /// the key's order (one another delivery took meanwhile is kept: ON CONFLICT on the receipts'
    /// key); the owed issues of readers who got a delivery are owed no more.
    /// </summary>
    private const string Receipted = """
        receipted as (
            insert into receipts (subscriber_id, issue_id, delivery_id)
            select w.subscriber_id, w.issue_id, ins.id
            from inserted ins join wanted w on w.subscriber_id = ins.subscriber_id
            order by w.issue_id, w.subscriber_id
            on conflict do nothing
        ),
        settled as (
            delete from issues_owed o using wanted w, inserted ins
            where w.owed and ins.subscriber_id = w.subscriber_id and o.subscriber_id = w.subscriber_id and o.issue_id = w.issue_id
        )
        """;

    /// <summary>
    /// Releases the slots that came due (each a cadence, zone, hour and weekday; readers who chose no
    /// zone or hour belong to the slot of the configured defaults) into the run of their cadence and
    /// local period, made on first use, in the caller's transaction: one row per slot with its
    /// readers counted, none per reader. Their deliveries are written by <see cref="WriteReleasedAsync"/>,
    /// a batch at a time as the workers need them. A slot without readers is not released (no run is
    /// made for it); a cancelled or finished run takes no more.
    /// </summary>
    /// <returns>The runs that got slots, and how many readers the slots hold.</returns>
    public async Task<(IReadOnlyList<long> Runs, int Readers)> ReleaseSlotsAsync(NpgsqlConnection connection, NpgsqlTransaction tx,
        IReadOnlyList<Scheduling.DueSlot> slots, Scheduling.LocalDefaults defaults, CancellationToken ct = default)
    {
        if (slots.Count == 0) return ([], 0);
        var args = new
        {
            kinds = slots.Select(s => Wire.Name(s.Cadence)).ToArray(),
            zones = slots.Select(s => s.TimeZone).ToArray(),
            hours = slots.Select(s => s.Hour).ToArray(),
            weekdays = slots.Select(s => s.Weekday is { } d ? (int)d : -1).ToArray(),
            periods = slots.Select(s => s.Period.ToDateTime(TimeOnly.MinValue)).ToArray(),
            until = slots.Select(s => Scheduling.LocalDelivery.SlicesUntil(s.Cadence, s.Period).UtcDateTime).ToArray(),
            defaultZone = defaults.TimeZone, defaultHour = defaults.Hour, defaultDay = (int)defaults.WeeklyDay, now = Now(),
        };
        var released = (await connection.QueryAsync<(long Run, int Readers)>(new CommandDefinition($"""
            with due as (
                select * from unnest(@kinds::text[], @zones::text[], @hours::int[], @weekdays::int[], @periods::date[], @until::timestamptz[])
                    as d(kind, zone, hour, weekday, period, until)
            ),
            counted as (
                select due.*, (select count(*) from ({SlotReaders("due.kind", "due.zone", "due.hour", "@defaultZone", "@defaultHour", "0", null)}) s
                               where due.weekday < 0 or coalesce(s.weekly_day, @defaultDay) = due.weekday) as readers
                from due
            ),
            periods as (select kind, period, max(until) as until from counted where readers > 0 group by kind, period),
            -- A run for each cadence and period with readers due; one made now, or the open one (a
            -- finished or cancelled period's run takes no more).
            created as (
                insert into runs (kind, period, created_at, slices_until)
                select kind, period, @now, until from periods
                on conflict do nothing
                returning id, kind, period
            ),
            open_runs as (
                select id, kind, period from created
                union all
                select r.id, r.kind, r.period from runs r join periods p on r.kind = p.kind and r.period = p.period where r.status in ({OpenRuns})
            )
            insert into run_slots (run_id, zone, hour, weekday, default_zone, default_hour, default_day, released_at, readers)
            select run.id, c.zone, c.hour, c.weekday, @defaultZone, @defaultHour, @defaultDay, @now, c.readers
            from counted c join open_runs run on run.kind = c.kind and run.period = c.period
            where c.readers > 0
            on conflict do nothing
            returning run_id, readers
            """, args, tx, cancellationToken: ct))).ToList();
        return (released.Select(r => r.Run).Distinct().ToList(), released.Sum(r => r.Readers));
    }

    /// <summary>
    /// SQL: the active readers of one slot with an id above <paramref name="after"/> (columns <c>id</c>,
    /// <c>weekly_day</c>, <c>issues_from</c>): those who chose its zone and hour, one of the two with the
    /// default for the other, or neither. Each branch is a range of the slot index in id order; with a
    /// <paramref name="limit"/>, the first that many by id.
    /// </summary>
    private static string SlotReaders(string kind, string zone, string hour, string defaultZone, string defaultHour, string after, string? limit)
    {
        var take = limit is null ? "" : $"order by s.id limit {limit}";
        var slot = $"s.status = 'active' and s.cadence = {kind} and s.id > {after}";
        string Branch(string where) => $"(select s.id, s.weekly_day, s.issues_from from subscribers s where {slot} and {where} {take})";
        var branches = string.Join("\n    union all\n    ", [
            Branch($"s.time_zone = {zone} and s.delivery_hour = {hour}"),
            Branch($"s.time_zone = {zone} and s.delivery_hour is null and {hour} = {defaultHour}"),
            Branch($"s.time_zone is null and s.delivery_hour = {hour} and {zone} = {defaultZone}"),
            Branch($"s.time_zone is null and s.delivery_hour is null and {zone} = {defaultZone} and {hour} = {defaultHour}"),
        ]);
        return limit is null ? branches : $"select * from (\n    {branches}\n) slot order by id limit {limit}";
    }

    /// <summary>How many of a released slot's readers one batch takes.</summary>
    public const int ReleasedBatch = 1000;

    /// <summary>
    /// Writes the deliveries of the next <paramref name="batch"/> readers of one released slot (of
    /// <paramref name="runId"/>'s, or of any run), the oldest slot first, in one transaction with the
    /// slot's cursor: each reader once per run, with the published issues they lack (up to now) and
    /// their receipts, as <see cref="EnqueueAsync"/> does. Readers are taken by the slot they belong
    /// to now, so one who moved to an hour still to come is taken there, and one who moved to an hour
    /// already past gets the next day's. A slot locked by another worker is skipped (SKIP LOCKED); a
    /// cancelled or finished run's slots are closed without writing.
    /// </summary>
    /// <returns>Whether a slot had readers left, and how many deliveries were written.</returns>
    public async Task<(bool Pending, int Written)> WriteReleasedAsync(long? runId = null, int batch = ReleasedBatch, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var slot = await connection.QuerySingleOrDefaultAsync<ReleasedSlot>(new CommandDefinition("""
            select sl.run_id, sl.zone, sl.hour, sl.weekday, sl.default_zone, sl.default_hour, sl.default_day, sl.after_subscriber,
                   r.kind, r.status as run_status
            from run_slots sl join runs r on r.id = sl.run_id
            where not sl.done and (@runId::bigint is null or sl.run_id = @runId::bigint)
            order by sl.released_at, sl.run_id
            limit 1
            for update of sl skip locked
            """, new { runId }, tx, cancellationToken: ct));
        if (slot is null) return (false, 0);
        var key = new { slot.RunId, slot.Zone, slot.Hour, slot.Weekday };
        if (!LedgerStates.OpenRuns.Contains(LedgerStates.ParseRun(slot.RunStatus)))
        {
            await connection.ExecuteAsync(new CommandDefinition(
                "update run_slots set done = true where run_id = @RunId and zone = @Zone and hour = @Hour and weekday = @Weekday", key, tx, cancellationToken: ct));
            await tx.CommitAsync(ct);
            return (true, 0);
        }
        await connection.ExecuteAsync(new CommandDefinition(ProbingSettings, transaction: tx, cancellationToken: ct));
        var written = await connection.QuerySingleAsync<(int Taken, long? Last, int Written)>(new CommandDefinition($"""
            with taken as (
                {SlotReaders("@kind", "@zone", "@hour", "@defaultZone", "@defaultHour", "@after", "@batch")}
            ),
            readers as (
                select id, issues_from from taken where @weekday < 0 or coalesce(weekly_day, @defaultDay) = @weekday
            ),
            -- Each reader with each published issue they lack (up to now). The receipts are not
            -- written yet when this is read, so the probes never see this statement's own rows.
            wanted as (
                select r.id as subscriber_id, lacking.issue_id, lacking.owed
                from readers r
                {Lacking("r", "@now")}
            ),
            inserted as (
                insert into deliveries (run_id, subscriber_id, next_attempt_at)
                select distinct @runId::bigint, w.subscriber_id, @now::timestamptz from wanted w
                order by 2 -- the indexes' order: neighbouring keys share pages
                on conflict (run_id, subscriber_id) do nothing
                returning id, subscriber_id
            ),
            {Receipted}
            select (select count(*) from taken)::int, (select max(id) from taken), (select count(*) from inserted)::int
            """, new
            {
                runId = slot.RunId, kind = slot.Kind, zone = slot.Zone, hour = (int)slot.Hour, weekday = (int)slot.Weekday,
                defaultZone = slot.DefaultZone, defaultHour = (int)slot.DefaultHour, defaultDay = (int)slot.DefaultDay,
                after = slot.AfterSubscriber, batch, now = Now(),
            }, tx, cancellationToken: ct, commandTimeout: 600));
        await connection.ExecuteAsync(new CommandDefinition(DefaultSettings, transaction: tx, cancellationToken: ct));
        await connection.ExecuteAsync(new CommandDefinition("""
            update run_slots set after_subscriber = coalesce(@Last, after_subscriber), taken = taken + @Taken, done = @Taken < @batch
            where run_id = @RunId and zone = @Zone and hour = @Hour and weekday = @Weekday;
            update runs set total = total + @Written where id = @RunId and @Written > 0;
            """, new { key.RunId, key.Zone, key.Hour, key.Weekday, written.Last, written.Taken, written.Written, batch }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        if (written.Taken < batch) await TryCompleteAsync([slot.RunId], ct);
        return (true, written.Written);
    }

    /// <summary>Writes every released slot's deliveries (of one run, or of all), batch after batch; returns how many.</summary>
    public async Task<int> WriteAllReleasedAsync(long? runId = null, CancellationToken ct = default)
    {
        var total = 0;
        while (await WriteReleasedAsync(runId, ReleasedBatch, ct) is (true, var written)) total += written;
        return total;
    }

    /// <summary>A released slot whose readers are still to be written, with its run's kind and state.</summary>
    private sealed class ReleasedSlot
    {
        public long RunId { get; init; }
        public string Zone { get; init; } = "";
        public short Hour { get; init; }
        public short Weekday { get; init; }
        public string DefaultZone { get; init; } = "";
        public short DefaultHour { get; init; }
        public short DefaultDay { get; init; }
        public long AfterSubscriber { get; init; }
        public string Kind { get; init; } = "";
        public string RunStatus { get; init; } = "";
    }

    /// <summary>The scheduled runs still sending whose period can take no more deliveries, for <see cref="TryCompleteAsync"/>.</summary>
    public async Task<IReadOnlyList<long>> ClosingRunsAsync(CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return (await connection.QueryAsync<long>(new CommandDefinition(
            $"select id from runs where status = {RunSending} and slices_until <= @now", new { now = Now() }, cancellationToken: ct))).ToList();
    }

    /// <summary>Marks done every given run that is sending and has nothing left to send.</summary>
    public async Task TryCompleteAsync(IReadOnlyCollection<long> runIds, CancellationToken ct = default)
    {
        if (runIds.Count == 0) return;
        await using var connection = await db.OpenConnectionAsync(ct);
        var done = await connection.QueryAsync<long>(new CommandDefinition($"""
            update runs r set status = {Done}, finished_at = @now
            where r.id = any(@ids) and r.status = {RunSending} and (r.slices_until is null or r.slices_until <= @now)
              and not exists (select 1 from deliveries d where d.run_id = r.id and d.status in ({OpenDeliveries}))
              and not exists (select 1 from run_slots sl where sl.run_id = r.id and not sl.done)
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
        ChangeAsync(id, RunStatus.Paused, [RunStatus.Sending], "pause_reason = @reason", reason, ct);

    public async Task<RunSummary> ResumeAsync(long id, CancellationToken ct = default)
    {
        var run = await ChangeAsync(id, RunStatus.Sending, [RunStatus.Paused, RunStatus.Sending], "pause_reason = null", null, ct);
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
        var run = await ChangeAsync(id, RunStatus.Cancelled, LedgerStates.OpenRuns, "finished_at = @now", null, ct);
        await using var connection = await db.OpenConnectionAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition($"""
            with cancelled as (
                update deliveries set status = {Cancelled}, lease_until = null, updated_at = @now
                where run_id = @id and status in ({UnstartedDeliveries})
                returning id
            ),
            released as (delete from receipts where delivery_id in (select id from cancelled) returning subscriber_id, issue_id),
            owed as ({Owe("released")}),
            closed as (update run_slots set done = true where run_id = @id and not done)
            select count(*) from cancelled
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
        if (failed) states.Add(LedgerStates.Name(DeliveryStatus.Failed));
        if (uncertain) states.Add(LedgerStates.Name(DeliveryStatus.Uncertain));
        if (states.Count == 0) throw new InputException("--failed/--uncertain", "say which deliveries to send again");
        var run = await GetAsync(id, ct) ?? throw new NotFoundException("run", $"no run has id {id}");
        if (run.State == RunStatus.Cancelled) throw new ConflictException("run", $"run {id} was cancelled");
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        try
        {
            await connection.ExecuteAsync(new CommandDefinition(
                $"update runs set status = {RunSending}, finished_at = null where id = @id and status = {Done}", new { id }, tx, cancellationToken: ct));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            throw new ConflictException("run", $"another {run.Kind} run is open; resend when it is finished");
        }
        // A subscriber who bounced or left since is cancelled at claim time, as always.
        var requeued = await connection.ExecuteAsync(new CommandDefinition($"""
            update deliveries set status = {Queued}, attempts = 0, next_attempt_at = @now, lease_until = null, updated_at = @now
            where run_id = @id and status = any(@states)
            """, new { id, states = states.ToArray(), now = Now() }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        logger.LogInformation("Run {RunId}: {Count} deliveries queued again ({States})", id, requeued, string.Join(", ", states));
        await TryCompleteAsync([id], ct);
        return ((await GetAsync(id, ct))!, requeued);
    }

    private async Task<RunSummary> ChangeAsync(long id, RunStatus to, RunStatus[] from, string set, string? reason, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        var changed = await connection.ExecuteAsync(new CommandDefinition(
            $"update runs set status = @to, {set} where id = @id and status = any(@from)",
            new { id, to = LedgerStates.Name(to), from = from.Select(LedgerStates.Name).ToArray(), reason, now = Now() }, cancellationToken: ct));
        var run = await GetAsync(id, ct) ?? throw new NotFoundException("run", $"no run has id {id}");
        if (changed == 0 && run.State != to)
            throw new ConflictException("run", $"run {id} is {run.Status}");
        if (changed > 0) logger.LogInformation("Run {RunId} is now {Status}", id, LedgerStates.Name(to));
        if (to == RunStatus.Sending) await TryCompleteAsync([id], ct);
        return (await GetAsync(id, ct))!;
    }

    private async Task<IReadOnlyList<RunSummary>> QueryAsync(string tail, object args, CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return (await connection.QueryAsync<RunSummary>(new CommandDefinition($"""
            select r.id, r.kind, r.status, i.slug as issue, r.period, r.pause_reason, r.total + p.pending as total,
                   r.created_at as started_at, r.finished_at,
                   coalesce(c.queued, 0) + p.pending as queued, coalesce(c.sent, 0) as sent, coalesce(c.retrying, 0) as retrying,
                   coalesce(c.failed, 0) as failed, coalesce(c.uncertain, 0) as uncertain,
                   coalesce(c.cancelled, 0) as cancelled, coalesce(c.skipped, 0) as skipped
            from runs r
            left join issues i on i.id = r.issue_id
            left join lateral (
                select count(*) filter (where status in ({Queued}, {Claimed}, {Sending})) as queued,
                       count(*) filter (where status = {Sent}) as sent,
                       count(*) filter (where status = {Retrying}) as retrying,
                       count(*) filter (where status = {Failed}) as failed,
                       count(*) filter (where status = {Uncertain}) as uncertain,
                       count(*) filter (where status = {Cancelled}) as cancelled,
                       count(*) filter (where status = {Skipped}) as skipped
                from deliveries d where d.run_id = r.id
            ) c on true
            -- Readers of released slots whose deliveries are still to be written: queued as well.
            cross join lateral (select {UnwrittenReaders("r")} as pending) p
            {tail}
            """, args, cancellationToken: ct))).ToList();
    }

    // ---- deliveries: what a worker does with them ------------------------------------------------

    /// <summary>
    /// Claims up to <paramref name="batch"/> due deliveries of sending runs (of one run, or of any)
    /// with <c>FOR UPDATE SKIP LOCKED</c> and a lease, so any number of workers share the queue.
    /// The subscriber's status is read here: a delivery of someone who left is cancelled when it
    /// comes up (see <see cref="CancelNotActive"/>).
    /// </summary>
    internal async Task<List<ClaimedDelivery>> ClaimAsync(long? runId, int batch, TimeSpan lease, CancellationToken ct)
    {
        var now = Now();
        await using var connection = await db.OpenConnectionAsync(ct);
        return (await connection.QueryAsync<ClaimedDelivery>(new CommandDefinition(ClaimSql,
            new { now, leaseUntil = now + lease, batch, runId }, cancellationToken: ct))).ToList();
    }

    private static readonly string ClaimSql = $"""
        with due as (
            select d.id from deliveries d join runs r on r.id = d.run_id
            where d.status in ({DueDeliveries}) and d.next_attempt_at <= @now and r.status = {RunSending}
              and (@runId::bigint is null or d.run_id = @runId::bigint)
            order by d.next_attempt_at, d.id
            limit @batch
            for update of d skip locked
        ),
        claimed as (
            update deliveries d set status = {Claimed}, lease_until = @leaseUntil, attempts = d.attempts + 1, updated_at = @now
            from due where d.id = due.id
            returning d.id, d.run_id, d.subscriber_id, d.attempts
        )
        select c.id, c.run_id, r.kind as run_kind, c.attempts, c.subscriber_id, s.public_id, s.email, s.name, s.language, s.status, s.click_tracking,
               array(select r.issue_id from receipts r where r.delivery_id = c.id order by r.issue_id) as issue_ids
        from claimed c join subscribers s on s.id = c.subscriber_id join runs r on r.id = c.run_id
        order by c.id
        """;

    /// <summary>
    /// Claims whose worker vanished go back to the queue (nothing was sent, so the claim was no
    /// attempt); sends whose worker vanished become uncertain (the server may have the message).
    /// </summary>
    internal async Task<int> ReleaseExpiredLeasesAsync(CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return await connection.ExecuteAsync(new CommandDefinition(ReleaseExpiredSql, new { now = Now() }, cancellationToken: ct));
    }

    private static readonly string ReleaseExpiredSql = $"""
        update deliveries set
            status = case when status = {Claimed} then {Queued} else {Uncertain} end,
            last_error = case when status = {Sending} then 'the sending process stopped before the server answered' else last_error end,
            attempts = case when status = {Claimed} then greatest(attempts - 1, 0) else attempts end,
            lease_until = null, updated_at = @now
        where status in ({Claimed}, {Sending}) and lease_until < @now
        """;

    /// <summary>
    /// The durable mark that messages are about to go to SMTP, written before they go. Conditional:
    /// only deliveries still claimed by this worker, of subscribers still active and not
    /// suppressed, so no message starts after an unsubscribe has committed. The write returns the
    /// ids it marked (<see cref="LedgerWriter.FlushMarkedAsync"/>); the others are left as they were.
    /// </summary>
    internal void MarkSending(LedgerWriter writer, IEnumerable<long> ids)
    {
        // A statement per delivery: the primary key finds each row (a generic plan for an array of
        // ids would also consult the index of leased deliveries, at a cost that grows with the run).
        var now = Now();
        foreach (var id in ids) writer.Add(MarkSendingSql, id, now);
    }

    private static readonly string MarkSendingSql = $"""
        update deliveries d set status = {Sending}, updated_at = $2
        where d.id = $1 and d.status = {Claimed}
          and exists (select 1 from subscribers s where s.id = d.subscriber_id and s.status = 'active'
                      and not exists (select 1 from suppressions x where x.email_hash = sha256(convert_to(lower(s.email), 'UTF8'))))
        returning d.id
        """;

    /// <summary>
    /// A claimed delivery whose subscriber left (or is suppressed) since: cancelled, its issues given
    /// back. The reason is checked again: a mark can also fail because the claim itself was lost (the
    /// lease ran out while the database was away, and another worker took the delivery), and then the
    /// delivery belongs to that worker and must not be cancelled under it.
    /// </summary>
    internal void CancelNotActive(LedgerWriter writer, long id)
    {
        writer.Add(CancelClaimedSql, id, Now(), "subscriber is no longer active");
        writer.Add(ReleaseReceiptsIfCancelledSql, id);
    }

    private static readonly string CancelClaimedSql = $"""
        update deliveries d set status = {Cancelled}, last_error = $3, lease_until = null, updated_at = $2
        where d.id = $1 and d.status = {Claimed}
          and not exists (select 1 from subscribers s where s.id = d.subscriber_id and s.status = 'active'
                          and not exists (select 1 from suppressions x where x.email_hash = sha256(convert_to(lower(s.email), 'UTF8'))))
        """;

    private static readonly string ReleaseReceiptsIfCancelledSql = $"""
        with released as (
            delete from receipts where delivery_id = $1 and exists (select 1 from deliveries where id = $1 and status = {Cancelled})
            returning subscriber_id, issue_id
        )
        {Owe("released")}
        """;

    /// <summary>The message was accepted.</summary>
    internal void RecordSent(LedgerWriter writer, long id, string? messageId) => writer.Add(SentSql, id, messageId, Now());

    private static readonly string SentSql =
        $"update deliveries set status = {Sent}, message_id = $2, last_error = null, sent_at = $3, lease_until = null, updated_at = $3 where id = $1";

    /// <summary>
    /// A final outcome other than sent: failed, uncertain, cancelled or skipped. With
    /// <paramref name="giveIssuesBack"/> (a cancelled delivery, or one that failed for a reason of
    /// ours) its receipts go, so the subscriber gets its issues in their next digest.
    /// </summary>
    internal void RecordOutcome(LedgerWriter writer, long id, DeliveryStatus status, string? error, bool giveIssuesBack = false)
    {
        if (status is DeliveryStatus.Sent or DeliveryStatus.Queued or DeliveryStatus.Claimed or DeliveryStatus.Sending or DeliveryStatus.Retrying)
            throw new ArgumentOutOfRangeException(nameof(status), status, "not a final outcome");
        writer.Add(OutcomeSql, id, LedgerStates.Name(status), error, Now());
        if (giveIssuesBack || status == DeliveryStatus.Cancelled) writer.Add(ReleaseReceiptsSql, id);
    }

    private const string OutcomeSql = "update deliveries set status = $2, last_error = $3, lease_until = null, updated_at = $4 where id = $1";

    private static readonly string ReleaseReceiptsSql = $"""
        with released as (delete from receipts where delivery_id = $1 returning subscriber_id, issue_id)
        {Owe("released")}
        """;

    /// <summary>
    /// SQL: receipts given back (the rows of <paramref name="released"/>) are owed to their readers:
    /// issues they hold newer ones than, which their next digest must still find.
    /// </summary>
    private static string Owe(string released) =>
        $"insert into issues_owed (subscriber_id, issue_id) select subscriber_id, issue_id from {released} on conflict do nothing";

    /// <summary>A temporary failure: queued again for <paramref name="at"/>.</summary>
    internal void ScheduleRetry(LedgerWriter writer, long id, DateTime at, string error) => writer.Add(RetrySql, id, at, error, Now());

    private static readonly string RetrySql =
        $"update deliveries set status = {Retrying}, next_attempt_at = $2, last_error = $3, lease_until = null, updated_at = $4 where id = $1";

    /// <summary>A claimed delivery that was not started: back to the queue, as if never claimed.</summary>
    internal void Requeue(LedgerWriter writer, long id) => writer.Add(RequeueSql, id, Now());

    private static readonly string RequeueSql = $"""
        update deliveries set status = {Queued}, lease_until = null, attempts = greatest(attempts - 1, 0), updated_at = $2
        where id = $1 and status in ({Claimed}, {Sending})
        """;

    /// <summary>Cancels a subscriber's unstarted deliveries inside the caller's transaction (they left); returns their runs.</summary>
    internal static Task<IEnumerable<long>> CancelForSubscriberAsync(NpgsqlConnection connection, NpgsqlTransaction tx, long subscriberId, string reason,
        DateTime now, CancellationToken ct) =>
        connection.QueryAsync<long>(new CommandDefinition(CancelForSubscriberSql, new { subscriberId, reason, now }, tx, cancellationToken: ct));

    // Only open runs hold unstarted deliveries; through them the (run, subscriber) key finds the
    // reader's rows (nothing indexes the subscriber alone: that was a scan of the whole send history
    // in every unsubscribe).
    private static readonly string CancelForSubscriberSql = $"""
        with cancelled as (
            update deliveries set status = {Cancelled}, last_error = @reason, lease_until = null, updated_at = @now
            where subscriber_id = @subscriberId and status in ({UnstartedDeliveries})
              and run_id in (select id from runs where status in ({OpenRuns}))
            returning id, run_id
        ),
        released as (delete from receipts where delivery_id in (select id from cancelled) returning subscriber_id, issue_id),
        owed as ({Owe("released")})
        select distinct run_id from cancelled
        """;

    /// <summary>A delivery a worker claimed, with what it needs to build and address the message.</summary>
    internal sealed class ClaimedDelivery
    {
        public long Id { get; init; }
        public long RunId { get; init; }
        public string RunKind { get; init; } = "";
        public long SubscriberId { get; init; }
        public int Attempts { get; init; }
        public Guid PublicId { get; init; }
        public string Email { get; init; } = "";
        public string? Name { get; init; }
        public string Language { get; init; } = "ko";
        public string Status { get; init; } = "";
        public long[] IssueIds { get; init; } = [];

        /// <summary>The reader lets their clicks be counted (their digest gets tracked links when tracking is on).</summary>
        public bool ClickTracking { get; init; }

        public Tracking.ClickCadence ClickCadence => Wire.Parse<Tracking.ClickCadence>("kind", RunKind);

        private static readonly string Active = Wire.Name(SubscriberStatus.Active);

        public bool SubscriberActive => Status == Active;

        public Subscriber ToSubscriber() => new()
        {
            PublicId = PublicId,
            Email = Email,
            Name = Name,
            Language = Wire.Parse<Language>("language", Language),
            Status = SubscriberStatus.Active,
        };
    }

    private DateTime Now() => clock.GetUtcNow().UtcDateTime;
}
