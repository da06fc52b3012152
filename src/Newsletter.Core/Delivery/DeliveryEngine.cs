using System.Collections.Concurrent;
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
/// Lanes over the ledger: claims due deliveries from <see cref="SendLedger"/> (which owns every
/// state change), builds each message from a digest rendered once per (issues, language), and
/// sends over parallel lanes, each one SMTP connection reused across batches. A delivery is marked
/// <c>sending</c> just before its message goes to SMTP (a window of
/// <see cref="DeliveryOptions.SendingWindow"/> deliveries at once, one by default): if the process
/// dies then, the delivery becomes <c>uncertain</c> when its lease runs out and is never resent
/// silently, so a crash leaves at most one window of uncertain deliveries per lane.
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
    TimeProvider clock,
    ILogger<DeliveryEngine> logger,
    DeliveryMetrics? metrics = null,
    SendRateLimit? rateLimit = null,
    IOptions<BounceOptions>? bounces = null,
    Newsletter.Bounces.DeliveryKeys? deliveryKeys = null) : IAsyncDisposable
{
    private readonly DigestCache _digests = new(issues, renderer);
    private readonly RetryPolicy _retries = new(options.Value, clock);
    private IMailLane[]? _lanes;
    private int _consecutiveConnectionFailures;
    private Task<List<SendLedger.ClaimedDelivery>>? _next;
    private long? _nextRun;

    /// <summary>Claims and sends one batch of due deliveries (of one run, or of any); returns how many were claimed.</summary>
    public async Task<int> DeliverBatchAsync(long? runId = null, CancellationToken ct = default)
    {
        List<SendLedger.ClaimedDelivery> claimed;
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
        var pause = new ConcurrentDictionary<long, string>();
        _lanes ??= Enumerable.Range(0, options.Value.Lanes).Select(_ => transport.OpenLane()).ToArray();
        // A subscriber's deliveries share a lane, so they arrive in the order they were queued
        // (two can be queued at once when a subscriber switched cadence).
        var lanes = _lanes;
        var work = claimed.GroupBy(c => (int)(c.SubscriberId % lanes.Length))
            .Select(g => (Lane: lanes[g.Key], Queue: new ConcurrentQueue<SendLedger.ClaimedDelivery>(g.OrderBy(c => c.Id))));
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

    private async Task LaneAsync(IMailLane lane, ConcurrentQueue<SendLedger.ClaimedDelivery> work,
        ConcurrentDictionary<long, string> pause, MailboxAddress sender, CancellationToken ct)
    {
        await using var writer = new LedgerWriter(db);
        var size = options.Value.SendingWindow;
        var window = new List<(SendLedger.ClaimedDelivery Delivery, MimeMessage Message)>(size);
        while (true)
        {
            window.Clear();
            while (window.Count < size && work.TryDequeue(out var delivery))
            {
                if (await PrepareAsync(writer, delivery, pause, ct) is { } message) window.Add((delivery, message));
            }
            if (window.Count == 0) break;
            // The 'sending' marks are durable before any message of the window goes out, and travel
            // in one round trip with the outcomes recorded since the previous window. They are
            // conditional: a subscriber who left after the claim, or whose address is suppressed,
            // gets nothing more.
            ledger.MarkSending(writer, window.Select(w => w.Delivery.Id));
            var marked = await writer.FlushMarkedAsync(CancellationToken.None);
            foreach (var (delivery, message) in window)
            {
                if (!marked.Contains(delivery.Id))
                    ledger.CancelNotActive(writer, delivery.Id);
                else if (ct.IsCancellationRequested || pause.ContainsKey(delivery.RunId))
                    ledger.Requeue(writer, delivery.Id); // marked, never handed to SMTP
                else
                    await SendAsync(writer, lane, delivery, message, sender, pause);
            }
        }
        // The outcomes of the lane's last messages. (Lost to a crash, a sent message stays
        // 'sending' and becomes uncertain; a delivery that never started stays claimed and goes
        // back to the queue when its lease runs out.)
        await writer.FlushAsync(CancellationToken.None);
    }

    /// <summary>The message of a claimed delivery, or null when it is not to be sent (its outcome then recorded).</summary>
    private async Task<MimeMessage?> PrepareAsync(LedgerWriter writer, SendLedger.ClaimedDelivery delivery, ConcurrentDictionary<long, string> pause, CancellationToken ct)
    {
        if (ct.IsCancellationRequested || pause.ContainsKey(delivery.RunId))
        {
            // Not started: back to the queue, as if never claimed.
            ledger.Requeue(writer, delivery.Id);
            return null;
        }
        if (!delivery.SubscriberActive)
        {
            ledger.RecordOutcome(writer, delivery.Id, DeliveryStatus.Cancelled, "subscriber is no longer active");
            return null;
        }
        if (delivery.IssueIds.Length == 0)
        {
            ledger.RecordOutcome(writer, delivery.Id, DeliveryStatus.Skipped, "every issue of this delivery went out in another run");
            return null;
        }
        MimeMessage message;
        try
        {
            var digest = await _digests.GetAsync(delivery.IssueIds, delivery.Language, delivery.ClickTracking, ct);
            message = builder.Build(digest, delivery.ToSubscriber(), $"delivery/{delivery.Id}", delivery.ClickCadence);
        }
        catch (OperationCanceledException)
        {
            ledger.Requeue(writer, delivery.Id);
            return null;
        }
        catch (Exception e)
        {
            // Our failure, not the reader's: the delivery fails, and its issues go back to the
            // subscriber's next digest instead of being counted as received.
            logger.LogError(e, "Rendering delivery {DeliveryId} of run {RunId} failed", delivery.Id, delivery.RunId);
            ledger.RecordOutcome(writer, delivery.Id, DeliveryStatus.Failed, "rendering failed: " + e.Message, giveIssuesBack: true);
            return null;
        }

        try
        {
            if (rateLimit is not null) await rateLimit.WaitAsync(ct);
        }
        catch (OperationCanceledException) { }
        if (ct.IsCancellationRequested)
        {
            ledger.Requeue(writer, delivery.Id);
            return null;
        }
        return message;
    }

    /// <summary>Hands a marked delivery's message to SMTP and records the outcome.</summary>
    private async Task SendAsync(LedgerWriter writer, IMailLane lane, SendLedger.ClaimedDelivery delivery, MimeMessage message,
        MailboxAddress sender, ConcurrentDictionary<long, string> pause)
    {
        // From here the message is in flight: shutdown lets it finish (bounded by the SMTP
        // timeout and the host's shutdown timeout) and records its outcome.
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        // With a bounce domain, each message's return path names its delivery (VERP).
        var envelope = bounces?.Value.Domain is { Length: > 0 } domain && deliveryKeys is not null
            ? new MailboxAddress("", deliveryKeys.ReturnPath(delivery.Id, domain))
            : sender;
        var outcome = await lane.SendAsync(message, envelope, new MailboxAddress(delivery.Name ?? "", delivery.Email), CancellationToken.None);
        metrics?.SendLatency(System.Diagnostics.Stopwatch.GetElapsedTime(started));
        metrics?.Message(delivery.RunKind, outcome.Result);
        if (outcome.ConnectionFailure) Interlocked.Increment(ref _consecutiveConnectionFailures);
        else if (outcome.Result != SendResult.PauseRun) Interlocked.Exchange(ref _consecutiveConnectionFailures, 0);

        switch (outcome.Result)
        {
            case SendResult.Sent:
                ledger.RecordSent(writer, delivery.Id, message.MessageId);
                break;
            case SendResult.Bounced:
                ledger.RecordOutcome(writer, delivery.Id, DeliveryStatus.Failed, outcome.Reply);
                Subscriptions.MarkBounced(writer, delivery.SubscriberId, outcome.Reply, Now());
                logger.LogWarning("Subscriber {SubscriberId} bounced: {Reply}", delivery.SubscriberId, outcome.Reply);
                break;
            case SendResult.Failed:
                ledger.RecordOutcome(writer, delivery.Id, DeliveryStatus.Failed, outcome.Reply);
                break;
            case SendResult.Uncertain:
                ledger.RecordOutcome(writer, delivery.Id, DeliveryStatus.Uncertain, outcome.Reply);
                break;
            case SendResult.PauseRun:
                ledger.Requeue(writer, delivery.Id);
                pause.TryAdd(delivery.RunId, outcome.Reply ?? "the mail server refused the sender");
                break;
            default:
                if (outcome.ConnectionFailure && Volatile.Read(ref _consecutiveConnectionFailures) >= options.Value.PauseAfterConsecutiveFailures)
                {
                    ledger.Requeue(writer, delivery.Id);
                    pause.TryAdd(delivery.RunId, $"{_consecutiveConnectionFailures} consecutive connection failures; last: {outcome.Reply}");
                }
                else
                {
                    RetryOrFail(writer, delivery, outcome.Reply ?? "temporary failure");
                }
                break;
        }
    }

    /// <summary>Sends what is due for <paramref name="runId"/> until nothing due is left (the CLI's <c>--deliver</c>).</summary>
    public async Task DeliverRunAsync(long runId, CancellationToken ct = default)
    {
        while (await DeliverBatchAsync(runId, ct) > 0) { }
    }

    private async Task<List<SendLedger.ClaimedDelivery>> ReleaseExpiredAndClaimAsync(long? runId, CancellationToken ct)
    {
        var released = await ledger.ReleaseExpiredLeasesAsync(ct);
        if (released > 0) logger.LogWarning("Took back {Count} deliveries whose worker stopped", released);
        // Readers whose delivery time came due are written a batch per claim, ahead of the sending
        // (batches that lack nothing to send are passed on to the next at once). A batch that fails
        // is rolled back whole and tried again at the next claim; what is written still goes.
        try
        {
            while (await ledger.WriteReleasedAsync(runId, SendLedger.ReleasedBatch, ct) is (true, 0)) { }
        }
        catch (Exception e) when (e is NpgsqlException && !ct.IsCancellationRequested)
        {
            logger.LogError(e, "Writing the deliveries of a released delivery time failed; it is tried again at the next claim");
        }
        return await ledger.ClaimAsync(runId, options.Value.BatchSize, options.Value.Lease, ct);
    }

    /// <summary>Gives a batch claimed ahead, and not started, back to the queue.</summary>
    private async Task ReleaseNextAsync()
    {
        if (_next is not { } next) return;
        _next = null;
        List<SendLedger.ClaimedDelivery> claimed;
        try
        {
            claimed = await next;
        }
        catch (Exception e) when (e is OperationCanceledException or NpgsqlException)
        {
            return; // nothing was claimed, or the claim's transaction rolled back
        }
        await using var writer = new LedgerWriter(db);
        foreach (var delivery in claimed) ledger.Requeue(writer, delivery.Id);
        await writer.FlushAsync(CancellationToken.None);
    }

    private void RetryOrFail(LedgerWriter writer, SendLedger.ClaimedDelivery delivery, string error)
    {
        if (delivery.Attempts < options.Value.MaxAttempts) metrics?.Retry();
        var (at, giveUp) = _retries.Next(delivery.RunKind, delivery.Attempts);
        if (at is null)
        {
            ledger.RecordOutcome(writer, delivery.Id, DeliveryStatus.Failed, giveUp is null ? error : $"{error} ({giveUp})");
            return;
        }
        ledger.ScheduleRetry(writer, delivery.Id, at.Value.UtcDateTime, error);
        logger.LogWarning("Delivery {DeliveryId} of run {RunId} will be retried: {Error}", delivery.Id, delivery.RunId, error);
    }

    public async ValueTask DisposeAsync()
    {
        await ReleaseNextAsync();
        if (_lanes is null) return;
        foreach (var lane in _lanes) await lane.DisposeAsync();
        _lanes = null;
    }

    private DateTime Now() => clock.GetUtcNow().UtcDateTime;
}
