using Dapper;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MimeKit;
using Newsletter.Configuration;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Validation;
using Npgsql;

namespace Newsletter.Delivery;

/// <summary>
/// Works off the ledger: claims due deliveries with <c>FOR UPDATE SKIP LOCKED</c> and a lease (so
/// any number of workers and processes share the queue), re-checks that each subscriber is still
/// active, renders each digest once per (issues, language), and sends over parallel lanes, each
/// one SMTP connection reused across batches. A delivery is marked <c>sending</c> just before its
/// message goes to SMTP: if the process dies then, the delivery becomes <c>uncertain</c> when its
/// lease runs out and is never resent silently, so a crash leaves at most one uncertain delivery
/// per lane.
/// </summary>
public sealed class DeliveryEngine(
    NpgsqlDataSource db,
    SendLedger ledger,
    IssueStore issues,
    DigestRenderer renderer,
    DigestMessageBuilder builder,
    IMailTransport transport,
    IOptions<NewsletterOptions> newsletter,
    IOptions<SmtpOptions> smtp,
    IOptions<DeliveryOptions> options,
    IOptions<ScheduleOptions> schedule,
    TimeProvider clock,
    ILogger<DeliveryEngine> logger,
    DeliveryMetrics? metrics = null,
    SendRateLimit? rateLimit = null) : IAsyncDisposable
{
    private readonly Dictionary<string, Task<DigestTemplate>> _digests = new();
    private readonly SemaphoreSlim _renderLock = new(1, 1);
    private IMailLane[]? _lanes;
    private int _consecutiveConnectionFailures;
    private Task<List<Claimed>>? _next;
    private long? _nextRun;

    /// <summary>Claims and sends one batch of due deliveries (of one run, or of any); returns how many were claimed.</summary>
    public async Task<int> DeliverBatchAsync(long? runId = null, CancellationToken ct = default)
    {
        List<Claimed> claimed;
        if (_next is { } next && _nextRun == runId)
        {
            _next = null;
            claimed = await next;
        }
        else
        {
            await ReleaseNextAsync();
            claimed = await ReleaseExpiredAndClaimAsync(runId, ct);
        }
        if (claimed.Count == 0) return 0;
        // A full batch: more is probably due. Claim it while this one is sent, so the lanes do not
        // wait for the database between batches. (It is sent after this batch, so a subscriber's
        // deliveries still go out in the order they were queued.)
        if (claimed.Count == options.Value.BatchSize && !ct.IsCancellationRequested)
        {
            _next = ReleaseExpiredAndClaimAsync(runId, ct);
            _nextRun = runId;
        }

        var sender = string.IsNullOrWhiteSpace(smtp.Value.ReturnPath) ? newsletter.Value.FromMailbox : new MailboxAddress("", smtp.Value.ReturnPath);
        var pause = new System.Collections.Concurrent.ConcurrentDictionary<long, string>();
        _lanes ??= Enumerable.Range(0, options.Value.Lanes).Select(_ => transport.OpenLane()).ToArray();
        // A subscriber's deliveries share a lane, so they arrive in the order they were queued
        // (two can be queued at once when a subscriber switched cadence).
        var lanes = _lanes;
        var work = claimed.GroupBy(c => (int)(c.SubscriberId % lanes.Length))
            .Select(g => (Lane: lanes[g.Key], Queue: new System.Collections.Concurrent.ConcurrentQueue<Claimed>(g.OrderBy(c => c.Id))));
        await Task.WhenAll(work.Select(w => LaneAsync(w.Lane, w.Queue, pause, sender, ct)));

        foreach (var (run, reason) in pause)
        {
            try
            {
                await ledger.PauseAsync(run, reason, CancellationToken.None);
                logger.LogError("Run {RunId} paused: {Reason}", run, reason);
            }
            catch (ConflictException) { } // cancelled or finished meanwhile
        }
        await ledger.TryCompleteAsync(claimed.Select(c => c.RunId).Distinct().ToList(), CancellationToken.None);
        return claimed.Count;
    }

    private async Task LaneAsync(IMailLane lane, System.Collections.Concurrent.ConcurrentQueue<Claimed> work,
        System.Collections.Concurrent.ConcurrentDictionary<long, string> pause, MailboxAddress sender, CancellationToken ct)
    {
        await using var writer = new LedgerWriter(db);
        while (work.TryDequeue(out var delivery))
        {
            if (ct.IsCancellationRequested || pause.ContainsKey(delivery.RunId))
            {
                // Not started: back to the queue, as if never claimed.
                Requeue(writer, delivery.Id);
                continue;
            }
            if (delivery.Status != "active")
            {
                Finish(writer, delivery.Id, "cancelled", null, "subscriber is no longer active");
                continue;
            }
            if (delivery.IssueIds.Length == 0)
            {
                Finish(writer, delivery.Id, "skipped", null, "every issue of this delivery went out in another run");
                continue;
            }
            MimeMessage message;
            try
            {
                var digest = await DigestAsync(delivery.IssueIds, delivery.Language, ct);
                message = builder.Build(digest, delivery.ToSubscriber(), $"delivery/{delivery.Id}");
            }
            catch (OperationCanceledException)
            {
                Requeue(writer, delivery.Id);
                continue;
            }
            catch (Exception e)
            {
                // Our failure, not the reader's: the delivery fails, and its issues go back to the
                // subscriber's next digest instead of being counted as received.
                logger.LogError(e, "Rendering delivery {DeliveryId} of run {RunId} failed", delivery.Id, delivery.RunId);
                Finish(writer, delivery.Id, "failed", null, "rendering failed: " + e.Message);
                writer.Add("delete from receipts where delivery_id = $1", delivery.Id);
                continue;
            }

            try
            {
                if (rateLimit is not null) await rateLimit.WaitAsync(ct);
            }
            catch (OperationCanceledException) { }
            if (ct.IsCancellationRequested)
            {
                Requeue(writer, delivery.Id);
                continue;
            }
            // The 'sending' mark is durable before the message goes out, and travels in one round
            // trip with the outcomes recorded since the previous mark.
            // It is conditional: a subscriber who left after the claim (their unsubscribe has
            // committed), or whose address is suppressed, gets nothing more.
            writer.Add("""
                update deliveries d set status = 'sending', updated_at = $2
                where d.id = $1 and d.status = 'claimed'
                  and exists (select 1 from subscribers s where s.id = d.subscriber_id and s.status = 'active'
                              and not exists (select 1 from suppressions x where x.email_hash = sha256(convert_to(lower(s.email), 'UTF8'))))
                """, delivery.Id, Now());
            if (await writer.FlushAsync(CancellationToken.None) == 0)
            {
                // Still ours (not taken back after a lost lease): cancelled, and its issues given back.
                writer.Add("""
                    update deliveries set status = 'cancelled', last_error = 'subscriber is no longer active', lease_until = null, updated_at = $2
                    where id = $1 and status = 'claimed'
                    """, delivery.Id, Now());
                writer.Add("delete from receipts where delivery_id = $1 and exists (select 1 from deliveries where id = $1 and status = 'cancelled')", delivery.Id);
                continue;
            }
            // From here the message is in flight: shutdown lets it finish (bounded by the SMTP
            // timeout and the host's shutdown timeout) and records its outcome.
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            var outcome = await lane.SendAsync(message, sender, new MailboxAddress(delivery.Name ?? "", delivery.Email), CancellationToken.None);
            metrics?.SendLatency(System.Diagnostics.Stopwatch.GetElapsedTime(started));
            metrics?.Message(delivery.RunKind, outcome.Result);
            if (outcome.ConnectionFailure) Interlocked.Increment(ref _consecutiveConnectionFailures);
            else if (outcome.Result != SendResult.PauseRun) Interlocked.Exchange(ref _consecutiveConnectionFailures, 0);

            switch (outcome.Result)
            {
                case SendResult.Sent:
                    Finish(writer, delivery.Id, "sent", message.MessageId, null);
                    break;
                case SendResult.Bounced:
                    Finish(writer, delivery.Id, "failed", null, outcome.Reply);
                    MarkBounced(writer, delivery.SubscriberId, outcome.Reply);
                    break;
                case SendResult.Failed:
                    Finish(writer, delivery.Id, "failed", null, outcome.Reply);
                    break;
                case SendResult.Uncertain:
                    Finish(writer, delivery.Id, "uncertain", null, outcome.Reply);
                    break;
                case SendResult.PauseRun:
                    Requeue(writer, delivery.Id);
                    pause.TryAdd(delivery.RunId, outcome.Reply ?? "the mail server refused the sender");
                    break;
                default:
                    if (outcome.ConnectionFailure && Volatile.Read(ref _consecutiveConnectionFailures) >= options.Value.PauseAfterConsecutiveFailures)
                    {
                        Requeue(writer, delivery.Id);
                        pause.TryAdd(delivery.RunId, $"{_consecutiveConnectionFailures} consecutive connection failures; last: {outcome.Reply}");
                    }
                    else
                    {
                        RetryOrFail(writer, delivery, outcome.Reply ?? "temporary failure");
                    }
                    break;
            }
        }
        // The outcomes of the lane's last messages. (Lost to a crash, a sent message stays
        // 'sending' and becomes uncertain; a delivery that never started stays claimed and goes
        // back to the queue when its lease runs out.)
        await writer.FlushAsync(CancellationToken.None);
    }

    /// <summary>Sends what is due for <paramref name="runId"/> until nothing due is left (the CLI's <c>--deliver</c>).</summary>
    public async Task DeliverRunAsync(long runId, CancellationToken ct = default)
    {
        while (await DeliverBatchAsync(runId, ct) > 0) { }
    }

    private async Task<List<Claimed>> ReleaseExpiredAndClaimAsync(long? runId, CancellationToken ct)
    {
        await ReleaseExpiredLeasesAsync(ct);
        return await ClaimAsync(runId, ct);
    }

    /// <summary>Gives a batch claimed ahead, and not started, back to the queue.</summary>
    private async Task ReleaseNextAsync()
    {
        if (_next is not { } next) return;
        _next = null;
        List<Claimed> claimed;
        try
        {
            claimed = await next;
        }
        catch (Exception e) when (e is OperationCanceledException or NpgsqlException)
        {
            return; // nothing was claimed, or the claim's transaction rolled back
        }
        await using var writer = new LedgerWriter(db);
        foreach (var delivery in claimed) Requeue(writer, delivery.Id);
        await writer.FlushAsync(CancellationToken.None);
    }

    private async Task<List<Claimed>> ClaimAsync(long? runId, CancellationToken ct)
    {
        var now = Now();
        await using var connection = await db.OpenConnectionAsync(ct);
        // The subscriber's status is read at claim time: unsubscribing cancels what is queued.
        return (await connection.QueryAsync<Claimed>(new CommandDefinition("""
            with due as (
                select d.id from deliveries d join runs r on r.id = d.run_id
                where d.status in ('queued', 'retrying') and d.next_attempt_at <= @now and r.status = 'sending'
                  and (@runId::bigint is null or d.run_id = @runId::bigint)
                order by d.next_attempt_at, d.id
                limit @batch
                for update of d skip locked
            ),
            claimed as (
                update deliveries d set status = 'claimed', lease_until = @leaseUntil, attempts = d.attempts + 1, updated_at = @now
                from due where d.id = due.id
                returning d.id, d.run_id, d.subscriber_id, d.attempts
            )
            select c.id, c.run_id, r.kind as run_kind, c.attempts, c.subscriber_id, s.public_id, s.email, s.name, s.language, s.status,
                   array(select r.issue_id from receipts r where r.delivery_id = c.id order by r.issue_id) as issue_ids
            from claimed c join subscribers s on s.id = c.subscriber_id join runs r on r.id = c.run_id
            order by c.id
            """, new { now, leaseUntil = now + options.Value.Lease, batch = options.Value.BatchSize, runId }, cancellationToken: ct))).ToList();
    }

    /// <summary>
    /// Claims whose worker vanished go back to the queue (nothing was sent); sends whose worker
    /// vanished become uncertain (the server may have the message).
    /// </summary>
    private async Task ReleaseExpiredLeasesAsync(CancellationToken ct)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        var released = await connection.ExecuteAsync(new CommandDefinition("""
            update deliveries set
                status = case when status = 'claimed' then 'queued' else 'uncertain' end,
                last_error = case when status = 'sending' then 'the sending process stopped before the server answered' else last_error end,
                -- A claim that never reached SMTP was not an attempt.
                attempts = case when status = 'claimed' then greatest(attempts - 1, 0) else attempts end,
                lease_until = null, updated_at = @now
            where status in ('claimed', 'sending') and lease_until < @now
            """, new { now = Now() }, cancellationToken: ct));
        if (released > 0) logger.LogWarning("Took back {Count} deliveries whose worker stopped", released);
    }

    private void Finish(LedgerWriter writer, long id, string status, string? messageId, string? error)
    {
        var now = Now();
        writer.Add(status == "sent"
            ? "update deliveries set status = 'sent', message_id = $2, last_error = null, sent_at = $3, lease_until = null, updated_at = $3 where id = $1"
            : "update deliveries set status = $2, last_error = $3, lease_until = null, updated_at = $4 where id = $1",
            status == "sent" ? [id, messageId, now] : [id, status, error, now]);
        // A cancelled delivery gives back its issues, so they are not lost to the subscriber.
        if (status == "cancelled") writer.Add("delete from receipts where delivery_id = $1", id);
    }

    private void RetryOrFail(LedgerWriter writer, Claimed delivery, string error)
    {
        var o = options.Value;
        if (delivery.Attempts >= o.MaxAttempts)
        {
            Finish(writer, delivery.Id, "failed", null, error);
            return;
        }
        metrics?.Retry();
        var delay = o.RetryBaseDelay * Math.Pow(2, delivery.Attempts - 1) * (0.8 + Random.Shared.NextDouble() * 0.4);
        // A digest never retries into the next run of its cadence: that run carries the next issues.
        if (delivery.RunKind is "daily" or "weekly" && NextRunOf(delivery.RunKind) is { } nextRun && clock.GetUtcNow() + delay >= nextRun)
        {
            Finish(writer, delivery.Id, "failed", null, $"{error} (no retry before the next {delivery.RunKind} run)");
            return;
        }
        writer.Add("update deliveries set status = 'retrying', next_attempt_at = $2, last_error = $3, lease_until = null, updated_at = $4 where id = $1",
            delivery.Id, Now() + delay, error, Now());
        logger.LogWarning("Delivery {DeliveryId} of run {RunId} will be retried: {Error}", delivery.Id, delivery.RunId, error);
    }

    private DateTimeOffset? NextRunOf(string kind)
    {
        var s = schedule.Value;
        return new Quartz.CronExpression(kind == "daily" ? s.Daily : s.Weekly, s.Zone).GetNextValidTimeAfter(clock.GetUtcNow());
    }

    /// <summary>The digest of these issues (oldest first) in this language, rendered once and shared by the lanes.</summary>
    private async Task<DigestTemplate> DigestAsync(long[] issueIds, string language, CancellationToken ct)
    {
        var key = $"{language}:{string.Join(',', issueIds)}";
        Task<DigestTemplate> rendering;
        await _renderLock.WaitAsync(ct);
        try
        {
            if (!_digests.TryGetValue(key, out rendering!))
            {
                if (_digests.Count > 256) _digests.Clear();
                _digests[key] = rendering = RenderAsync(issueIds, language, ct);
            }
        }
        finally
        {
            _renderLock.Release();
        }
        return await rendering;
    }

    private async Task<DigestTemplate> RenderAsync(long[] issueIds, string language, CancellationToken ct)
    {
        var ordered = (await issues.GetByIdsAsync(issueIds, ct)).OrderBy(i => i.PublishedAt).ThenBy(i => i.Id).ToList();
        return await renderer.RenderAsync(ordered, Wire.Parse<Language>("language", language));
    }

    private void Requeue(LedgerWriter writer, long id) => writer.Add("""
        update deliveries set status = 'queued', lease_until = null, attempts = greatest(attempts - 1, 0), updated_at = $2
        where id = $1 and status in ('claimed', 'sending')
        """, id, Now());

    /// <summary>The mailbox does not exist: the subscriber is marked bounced with the server's reply, and nothing more is sent to them.</summary>
    private void MarkBounced(LedgerWriter writer, long subscriberId, string? reply)
    {
        writer.Add("""
            with bounced as (
                update subscribers set status = 'bounced', status_reason = $2, updated_at = $3 where id = $1 and status = 'active' returning id
            )
            insert into subscription_events (subscriber_id, at, event, source, detail)
            select id, $3, 'bounced', 'bounce', left($2, 500) from bounced
            """, subscriberId, reply, Now());
        logger.LogWarning("Subscriber {SubscriberId} bounced: {Reply}", subscriberId, reply);
    }

    public async ValueTask DisposeAsync()
    {
        await ReleaseNextAsync();
        if (_lanes is null) return;
        foreach (var lane in _lanes) await lane.DisposeAsync();
        _lanes = null;
    }

    private DateTime Now() => clock.GetUtcNow().UtcDateTime;

    private sealed class Claimed
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

        public Subscriber ToSubscriber() => new()
        {
            PublicId = PublicId,
            Email = Email,
            Name = Name,
            Language = Wire.Parse<Language>("language", Language),
            Status = SubscriberStatus.Active,
        };
    }
}
