using System.Security.Cryptography;
using Dapper;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MimeKit;
using Newsletter.Configuration;
using Npgsql;

namespace Newsletter.Bounces;

/// <summary>Where a report came in.</summary>
public enum BounceSource { Mailbox, Smtp, Webhook, Cli }

/// <summary>What became of a report.</summary>
public enum BounceOutcome
{
    /// <summary>Recorded, and the policy applied to the subscriber.</summary>
    Applied,
    /// <summary>The same report was processed before: nothing changed.</summary>
    Duplicate,
    /// <summary>An auto-reply, a delivery notice, a DMARC report: nothing to do.</summary>
    Ignored,
    /// <summary>No authenticated key ties it to a delivery of ours (or it names another address): nothing changed.</summary>
    Unmatched,
}

public sealed record BounceResult(BounceOutcome Outcome, long? DeliveryId, BounceVerdict? Verdict);

/// <summary>
/// Turns a report into what happens to a subscriber, once. The report is tied to one delivery by
/// an authenticated key only: the VERP return path it was sent to, or the Message-ID of the
/// original it quotes; and the recipient it names must be that delivery's address (a report that
/// names none counts only by its return path). The policy:
/// <list type="bullet">
/// <item><c>hard</c>: the subscriber becomes bounced and stops receiving at once;</item>
/// <item><c>soft</c>: counted; <c>Newsletter__Bounces__SoftLimit</c> of them within
/// <c>Newsletter__Bounces__SoftWindow</c> and the subscriber becomes bounced;</item>
/// <item><c>complaint</c>: unsubscribed at once (history source <c>complaint</c>) and the address
/// suppressed, so no import adds it again;</item>
/// <item><c>block</c>: nothing happens to the subscriber; it is counted for the run, and past
/// <c>Newsletter__Bounces__BlockRatePause</c> of the run's sent messages (and at least
/// <c>BlockMinimum</c> blocks) the run pauses with the reason, as it does on a systemic 5.7.x.</item>
/// </list>
/// Each report is stored once per delivery (by its Message-ID, or its body), with the delivery marked
/// "bounced after delivery: ..." and the change in the subscriber's history, in one transaction.
/// </summary>
public sealed class BounceProcessor(NpgsqlDataSource db, DeliveryKeys keys, IOptions<BounceOptions> options, TimeProvider clock,
    ILogger<BounceProcessor> logger, Newsletter.Delivery.SendLedger ledger, Newsletter.Delivery.DeliveryMetrics? metrics = null)
{
    public async Task<BounceResult> ProcessAsync(MimeMessage message, IReadOnlyList<string> envelopeRecipients, BounceSource source, CancellationToken ct = default)
    {
        var report = BounceParser.Parse(message);
        var (id, byEnvelope) = FindDeliveryId(message, report, envelopeRecipients);
        await using var connection = await db.OpenConnectionAsync(ct);
        var found = id is null ? null : await LoadDeliveryAsync(connection, null, id.Value, ct);
        if (found is null)
        {
            logger.LogInformation("A report ({Subject}) names no delivery of ours; ignored", Shorten(message.Subject));
            return Refused(source, BounceOutcome.Unmatched, null, null);
        }
        var verdict = report.Recipients.FirstOrDefault(r => string.Equals(r.Recipient, found.Email, StringComparison.OrdinalIgnoreCase))
            ?? (byEnvelope && report.Recipients is [{ Recipient: null } only] ? only : null);
        if (verdict is null)
        {
            logger.LogWarning("A report for delivery {DeliveryId} does not name its recipient; ignored", found.Id);
            return Refused(source, BounceOutcome.Unmatched, found.Id, null);
        }
        // A report that names nobody and says nothing recognisable (a broken MIME tree, noise) is not held against anyone.
        if (verdict.Kind is BounceKind.AutoReply or BounceKind.NotABounce || verdict is { Recipient: null, Reason: BounceClassifier.Undefined })
            return Refused(source, BounceOutcome.Ignored, found.Id, verdict);

        await using var tx = await connection.BeginTransactionAsync(ct);
        if (!await ApplyAsync(connection, tx, found, verdict, Hash(message), source, ct)) return Refused(source, BounceOutcome.Duplicate, found.Id, verdict);
        await tx.CommitAsync(ct);
        await AppliedAsync(found, verdict, ct);
        return new BounceResult(BounceOutcome.Applied, found.Id, verdict);
    }

    /// <summary>How long a provider's event id is remembered, so the same call is refused as a replay.</summary>
    public static readonly TimeSpan WebhookReceiptsKept = TimeSpan.FromDays(30);

    /// <summary>
    /// Applies the events of one authenticated provider call, once: the call's id is stored in the
    /// same transaction as what it changed, so a replay changes nothing (<c>null</c>), and a call
    /// that failed half-way is taken again in full when the provider retries.
    /// </summary>
    public async Task<IReadOnlyList<BounceResult>?> ProcessEventsAsync(string provider, string eventId, IReadOnlyList<Webhooks.ProviderEvent> events,
        CancellationToken ct = default)
    {
        const BounceSource source = BounceSource.Webhook;
        var now = clock.GetUtcNow().UtcDateTime;
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var storedId = eventId.Length <= 300 ? eventId : Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(eventId)));
        await connection.ExecuteAsync(new CommandDefinition("delete from webhook_receipts where received_at < @cutoff",
            new { cutoff = now - WebhookReceiptsKept }, tx, cancellationToken: ct));
        var inserted = await connection.ExecuteScalarAsync<bool?>(new CommandDefinition("""
            insert into webhook_receipts (provider, event_id, received_at) values (@provider, @storedId, @now)
            on conflict do nothing returning true
            """, new { provider, storedId, now }, tx, cancellationToken: ct)) == true;
        if (!inserted) return null;
        var hash = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{provider}\n{eventId}"));
        var results = new List<BounceResult>();
        var applied = new List<(Delivery, BounceVerdict)>();
        foreach (var e in events)
        {
            long? id = null;
            foreach (var key in e.Keys)
            {
                if (options.Value.Domain is { Length: > 0 } domain && keys.TryReadReturnPath(key, domain, out var byPath)) id = byPath;
                else if (keys.TryReadMessageId(key, out var byMessageId)) id = byMessageId;
                if (id is not null) break;
            }
            var found = id is null ? null : await LoadDeliveryAsync(connection, tx, id.Value, ct);
            if (found is null || !string.Equals(e.Verdict.Recipient, found.Email, StringComparison.OrdinalIgnoreCase))
            {
                logger.LogInformation("A {Provider} event about {Recipient} names no delivery of ours; ignored", provider, e.Verdict.Recipient);
                results.Add(Refused(source, BounceOutcome.Unmatched, found?.Id, e.Verdict));
            }
            else if (e.Verdict.Kind is BounceKind.AutoReply or BounceKind.NotABounce)
                results.Add(Refused(source, BounceOutcome.Ignored, found.Id, e.Verdict));
            else if (!await ApplyAsync(connection, tx, found, e.Verdict, hash, source, ct))
                results.Add(Refused(source, BounceOutcome.Duplicate, found.Id, e.Verdict));
            else
            {
                applied.Add((found, e.Verdict));
                results.Add(new BounceResult(BounceOutcome.Applied, found.Id, e.Verdict));
            }
        }
        await tx.CommitAsync(ct);
        foreach (var (delivery, verdict) in applied) await AppliedAsync(delivery, verdict, ct);
        return results;
    }

    private BounceResult Refused(BounceSource source, BounceOutcome outcome, long? deliveryId, BounceVerdict? verdict)
    {
        metrics?.ReportRefused(source.ToString().ToLowerInvariant(), outcome.ToString().ToLowerInvariant());
        return new BounceResult(outcome, deliveryId, verdict);
    }

    /// <summary>Records a report about one delivery and applies the policy, in the caller's transaction; false when this report was recorded before.</summary>
    private async Task<bool> ApplyAsync(NpgsqlConnection connection, NpgsqlTransaction tx, Delivery found, BounceVerdict verdict, byte[] hash, BounceSource source,
        CancellationToken ct)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var detail = Detail(verdict);
        var stored = await connection.ExecuteScalarAsync<long?>(new CommandDefinition("""
            insert into bounce_events (delivery_id, run_id, subscriber_id, kind, status, reason, diagnostic, source, report_hash, received_at)
            values (@Id, @RunId, @SubscriberId, @kind, @status, @reason, left(@diagnostic, 500), @source, @hash, @now)
            on conflict (report_hash, delivery_id) do nothing
            returning id
            """, new
        {
            found.Id, found.RunId, found.SubscriberId, kind = BounceKinds.Name(verdict.Kind), status = verdict.Status, reason = verdict.Reason,
            diagnostic = verdict.Diagnostic, source = source.ToString().ToLowerInvariant(), hash, now,
        }, tx, cancellationToken: ct));
        if (stored is null) return false;

        await connection.ExecuteAsync(new CommandDefinition(
            "update deliveries set last_error = left(@text, 500), updated_at = @now where id = @Id",
            new { found.Id, text = $"{(verdict.Kind == BounceKind.Complaint ? "complaint" : "bounced")} after delivery: {detail}", now }, tx, cancellationToken: ct));
        switch (verdict.Kind)
        {
            case BounceKind.Hard:
                await BounceAsync(connection, tx, found.SubscriberId, detail, now, ct);
                break;
            case BounceKind.Soft:
                var o = options.Value;
                var recent = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                    "select count(*) from bounce_events where subscriber_id = @SubscriberId and kind = 'soft' and received_at > @since",
                    new { found.SubscriberId, since = now - o.SoftWindow }, tx, cancellationToken: ct));
                if (recent >= o.SoftLimit)
                    await BounceAsync(connection, tx, found.SubscriberId, $"{recent} soft bounces within {o.SoftWindow.TotalDays:0} days; last: {detail}", now, ct);
                break;
            case BounceKind.Complaint:
                await connection.ExecuteAsync(new CommandDefinition("""
                    with complained as (
                        update subscribers set status = 'unsubscribed', unsubscribed_at = @now, status_reason = 'complaint', updated_at = @now
                        where id = @SubscriberId and status in ('active', 'pending') returning id
                    )
                    insert into subscription_events (subscriber_id, at, event, source, detail)
                    select id, @now, 'unsubscribed', 'complaint', left(@detail, 500) from complained
                    """, new { found.SubscriberId, now, detail }, tx, cancellationToken: ct));
                await connection.ExecuteAsync(new CommandDefinition("""
                    insert into suppressions (email_hash, reason, created_at) values (sha256(convert_to(lower(@Email), 'UTF8')), 'complaint', @now)
                    on conflict (email_hash) do nothing
                    """, new { found.Email, now }, tx, cancellationToken: ct));
                break;
        }
        return true;
    }

    /// <summary>What follows a committed report: the metric, the log line, and a run paused when receivers refuse the sender too often.</summary>
    private async Task AppliedAsync(Delivery found, BounceVerdict verdict, CancellationToken ct)
    {
        var detail = Detail(verdict);
        metrics?.Bounce(BounceKinds.Name(verdict.Kind));
        if (verdict.Kind == BounceKind.Block) await PauseIfBlockedAsync(found.RunId, detail, ct);
        logger.LogInformation("Delivery {DeliveryId}: {Kind} ({Detail})", found.Id, BounceKinds.Name(verdict.Kind), detail);
    }

    private sealed record Delivery(long Id, long RunId, long SubscriberId, string Email);

    /// <summary>The delivery a report answers, and whether its VERP return path said so.</summary>
    private (long? Id, bool ByEnvelope) FindDeliveryId(MimeMessage message, BounceReport report, IReadOnlyList<string> envelopeRecipients)
    {
        if (options.Value.Domain is { Length: > 0 } domain)
        {
            // The envelope recipient, or the headers a mailbox keeps it in.
            var candidates = envelopeRecipients
                .Concat(message.Headers.Where(h => h.Field is "Delivered-To" or "X-Original-To" or "Envelope-To" or "X-Envelope-To").Select(h => h.Value))
                .Concat(message.To.Mailboxes.Select(m => m.Address));
            foreach (var candidate in candidates)
                if (keys.TryReadReturnPath(candidate, domain, out var fromEnvelope))
                    return (fromEnvelope, true);
        }
        return keys.TryReadMessageId(report.OriginalMessageId, out var fromMessageId) ? (fromMessageId, false) : (null, false);
    }

    private static Task<Delivery?> LoadDeliveryAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, long id, CancellationToken ct) =>
        connection.QuerySingleOrDefaultAsync<Delivery>(new CommandDefinition("""
            select d.id as Id, d.run_id as RunId, d.subscriber_id as SubscriberId, s.email as Email
            from deliveries d join subscribers s on s.id = d.subscriber_id where d.id = @id
            """, new { id }, tx, cancellationToken: ct));

    /// <summary>Pauses a run that is still sending once receivers refuse the sender for too many of its messages.</summary>
    private async Task PauseIfBlockedAsync(long runId, string detail, CancellationToken ct)
    {
        var o = options.Value;
        if (o.BlockRatePause <= 0) return;
        await using var connection = await db.OpenConnectionAsync(ct);
        var (blocks, sent) = await connection.QuerySingleAsync<(long, long)>(new CommandDefinition($"""
            select (select count(*) from bounce_events where run_id = @runId and kind = 'block'),
                   (select count(*) from deliveries where run_id = @runId and status = {Newsletter.Delivery.LedgerStates.Sql(Newsletter.Delivery.DeliveryStatus.Sent)})
            """, new { runId }, cancellationToken: ct));
        if (blocks < o.BlockMinimum || blocks < o.BlockRatePause * Math.Max(sent, 1)) return;
        try
        {
            await ledger.PauseAsync(runId,
                $"receivers refused the sender for {blocks} of {sent} sent messages (Newsletter__Bounces__BlockRatePause is {o.BlockRatePause:P1}); last: {detail}", ct);
            logger.LogError("Run {RunId} paused: receivers refused the sender for {Blocks} of {Sent} messages", runId, blocks, sent);
        }
        catch (Validation.ConflictException) { } // finished, cancelled or already paused
    }

    private static Task BounceAsync(NpgsqlConnection connection, NpgsqlTransaction tx, long subscriberId, string detail, DateTime now, CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition("""
            with bounced as (
                update subscribers set status = 'bounced', status_reason = left(@detail, 500), updated_at = @now where id = @subscriberId and status = 'active' returning id
            )
            insert into subscription_events (subscriber_id, at, event, source, detail)
            select id, @now, 'bounced', 'bounce', left(@detail, 500) from bounced
            """, new { subscriberId, detail, now }, tx, cancellationToken: ct));

    private static string Detail(BounceVerdict v) =>
        string.Join(" ", new[] { v.Status, v.Reason, v.Diagnostic is null ? null : $"({v.Diagnostic})" }.Where(t => !string.IsNullOrEmpty(t)));

    /// <summary>
    /// What makes a report the same report: its own Message-ID, or without one its body. Not the
    /// headers, which differ between the copy handed over by SMTP and the one a mailbox kept
    /// (Delivered-To, Return-Path, Received).
    /// </summary>
    private static byte[] Hash(MimeMessage message)
    {
        if (!string.IsNullOrWhiteSpace(message.MessageId))
            return SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("message-id\n" + message.MessageId.Trim()));
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var stream = new HashingStream(sha);
        message.Body?.WriteTo(FormatOptions.Default, stream);
        return sha.GetHashAndReset();
    }

    private static string? Shorten(string? text) => text is { Length: > 100 } ? text[..100] : text;

    private sealed class HashingStream(IncrementalHash hash) : Stream
    {
        public override void Write(byte[] buffer, int offset, int count) => hash.AppendData(buffer, offset, count);
        public override void Write(ReadOnlySpan<byte> buffer) => hash.AppendData(buffer);
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
