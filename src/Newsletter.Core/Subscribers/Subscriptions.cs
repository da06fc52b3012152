using Dapper;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Npgsql;

namespace Newsletter.Subscribers;

/// <summary>Where a change of a subscription came from (recorded in its history).</summary>
public enum ChangeSource { OneClick, Page, Preferences, Admin, Bounce, Complaint }

/// <summary>The client that asked for a change, where there is one.</summary>
public sealed record ClientInfo(string? Address, string? UserAgent)
{
    public static readonly ClientInfo None = new(null, null);
}

/// <summary>One entry of a subscriber's history.</summary>
public sealed record SubscriptionEvent(DateTime At, string Event, string Source, string? Detail, string? ClientAddress, string? UserAgent);

/// <summary>What a confirmation link did.</summary>
public enum ConfirmResult { Confirmed, AlreadyActive, NotPending }

/// <summary>
/// The subscriber's side of a subscription, addressed by the public id in a signed link: sign up
/// (double opt-in), confirm, change preferences, unsubscribe and resubscribe. Each change and its
/// history entry are written in one transaction.
/// </summary>
public sealed class Subscriptions(
    NpgsqlDataSource db, SendLedger ledger, IOptions<SubscribeOptions> options, IOptions<DeliveryOptions> delivery, TimeProvider clock)
{
    /// <summary>Raised after a sign-up made a confirmation mail due.</summary>
    public event Action? ConfirmationDue;

    /// <summary>
    /// Signs up an address from the public form. A new address is stored as pending. A pending or
    /// unsubscribed one becomes (or stays) pending, and the form's name, cadence and language are
    /// held as a request: anyone can post the form, so they replace the subscriber's own only when
    /// the owner confirms. Either way a confirmation mail becomes due, at most once per
    /// <see cref="SubscribeOptions.ConfirmationInterval"/>. An active, bounced or complained address
    /// is left alone (a bounced mailbox is not mailed again on a stranger's word). The caller
    /// learns nothing of which case it was.
    /// </summary>
    public async Task SignUpAsync(NewSubscriber subscriber, ClientInfo client, CancellationToken ct = default)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                if (await TrySignUpAsync(subscriber, client, ct)) ConfirmationDue?.Invoke();
                return;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && attempt == 0)
            {
                // Two sign-ups of one new address at once: the second finds the first's row.
            }
        }
    }

    private async Task<bool> TrySignUpAsync(NewSubscriber subscriber, ClientInfo client, CancellationToken ct)
    {
        var now = Now();
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var existing = await connection.QuerySingleOrDefaultAsync<(long Id, string Status, DateTime? SentAt, string? Name, string Cadence, string Language)?>(new CommandDefinition(
            "select id, status, confirmation_sent_at, name, cadence, language from subscribers where lower(email) = lower(@Email) for update",
            new { subscriber.Email }, tx, cancellationToken: ct));
        var args = new
        {
            subscriber.Email, subscriber.Name, Cadence = Wire.Name(subscriber.Cadence), Language = Wire.Name(subscriber.Language), now,
            due = now - options.Value.ConfirmationInterval,
            zone = subscriber.Time?.TimeZone, hour = (short?)subscriber.Time?.Hour, weekday = (short?)subscriber.Time?.WeeklyDay,
        };
        bool due;
        if (existing is null)
        {
            var id = await connection.ExecuteScalarAsync<long>(new CommandDefinition("""
                insert into subscribers (email, name, cadence, language, time_zone, delivery_hour, weekly_day, status, created_at, updated_at, confirmation_requested_at)
                values (@Email, @Name, @Cadence, @Language, @zone, @hour, @weekday, 'pending', @now, @now, @now)
                returning id
                """, args, tx, cancellationToken: ct));
            await RecordAsync(connection, tx, id, "subscribed", ChangeSource.Page, null, client, ct);
            due = true;
        }
        else if (existing.Value.Status is "pending" or "unsubscribed")
        {
            due = existing.Value.SentAt is null || existing.Value.SentAt <= args.due;
            await connection.ExecuteAsync(new CommandDefinition("""
                update subscribers set requested_name = @Name, requested_cadence = @Cadence, requested_language = @Language,
                    requested_time = @requestedTime, status = 'pending',
                    confirmation_requested_at = case when @isDue then @now else confirmation_requested_at end, updated_at = @now
                where id = @id
                """, new
            {
                args.Name, args.Cadence, args.Language, args.now, isDue = due, id = existing.Value.Id,
                requestedTime = subscriber.Time is { } t ? new[] { t.TimeZone, t.Hour?.ToString(System.Globalization.CultureInfo.InvariantCulture), t.WeeklyDay?.ToString("d") } : null,
            }, tx, cancellationToken: ct));
            var differs = (subscriber.Name is not null && subscriber.Name != existing.Value.Name) || args.Cadence != existing.Value.Cadence || args.Language != existing.Value.Language;
            if (existing.Value.Status != "pending" || differs)
                await RecordAsync(connection, tx, existing.Value.Id, "subscribed", ChangeSource.Page,
                    differs ? $"was {existing.Value.Status}; the form's choices apply once confirmed" : $"was {existing.Value.Status}", client, ct);
        }
        else
        {
            due = false; // active (nothing new to confirm), bounced or complained (never mailed on a stranger's word)
        }
        await tx.CommitAsync(ct);
        return due;
    }

    /// <summary>Activates a pending subscription (the confirmation link's button).</summary>
    public async Task<(ConfirmResult Result, Subscriber? Subscriber)> ConfirmAsync(Guid publicId, ClientInfo client, CancellationToken ct = default)
    {
        var now = Now();
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var current = await LockAsync(connection, tx, publicId, ct);
        if (current is null) return (ConfirmResult.NotPending, null);
        if (current.Status == SubscriberStatus.Active) return (ConfirmResult.AlreadyActive, current);
        if (current.Status != SubscriberStatus.Pending) return (ConfirmResult.NotPending, current);
        var updated = await ActivateAsync(connection, tx, current.Id, now, ct);
        await RecordAsync(connection, tx, current.Id, current.ConfirmedAt is null ? "confirmed" : "resubscribed", ChangeSource.Page, null, client, ct);
        // The owner confirmed: the choices of the form they (or someone) posted become theirs.
        var requested = await connection.QuerySingleAsync<Subscriber>(new CommandDefinition($"""
            update subscribers set name = coalesce(requested_name, name), cadence = coalesce(requested_cadence, cadence),
                language = coalesce(requested_language, language),
                time_zone = case when requested_time is null then time_zone else requested_time[1] end,
                delivery_hour = case when requested_time is null then delivery_hour else requested_time[2]::smallint end,
                weekly_day = case when requested_time is null then weekly_day else requested_time[3]::smallint end,
                requested_name = null, requested_cadence = null, requested_language = null, requested_time = null
            where id = @Id returning {SubscriberStore.Columns}
            """, new { current.Id }, tx, cancellationToken: ct));
        if (requested.Cadence != updated.Cadence)
            await RecordAsync(connection, tx, current.Id, "cadence_changed", ChangeSource.Page, $"{Wire.Name(updated.Cadence)} -> {Wire.Name(requested.Cadence)}", client, ct);
        if (requested.Language != updated.Language)
            await RecordAsync(connection, tx, current.Id, "language_changed", ChangeSource.Page, $"{Wire.Name(updated.Language)} -> {Wire.Name(requested.Language)}", client, ct);
        if (requested.Name != updated.Name)
            await RecordAsync(connection, tx, current.Id, "name_changed", ChangeSource.Page, null, client, ct);
        if (requested.Time != updated.Time)
            await RecordAsync(connection, tx, current.Id, "delivery_time_changed", ChangeSource.Page,
                $"{SubscriberStore.Describe(updated.Time)} -> {SubscriberStore.Describe(requested.Time)}", client, ct);
        updated = requested;
        // The owner confirmed by mail: an earlier erasure no longer speaks for them.
        await connection.ExecuteAsync(new CommandDefinition(
            "delete from suppressions where email_hash = sha256(convert_to(lower(@Email), 'UTF8'))", new { current.Email }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return (ConfirmResult.Confirmed, updated);
    }

    /// <summary>
    /// Unsubscribes at once and idempotently: whatever is still queued for the subscriber is
    /// cancelled in the same transaction, so no new message starts after this returns.
    /// </summary>
    /// <returns>The subscriber, or null when the link's subscriber no longer exists.</returns>
    public async Task<Subscriber?> UnsubscribeAsync(Guid publicId, ChangeSource source, ClientInfo client, CancellationToken ct = default)
    {
        var now = Now();
        List<long> runs;
        Subscriber? updated;
        await using (var connection = await db.OpenConnectionAsync(ct))
        await using (var tx = await connection.BeginTransactionAsync(ct))
        {
            var current = await LockAsync(connection, tx, publicId, ct);
            if (current is null) return null;
            if (current.Status is not (SubscriberStatus.Active or SubscriberStatus.Pending)) return current;
            updated = await connection.QuerySingleAsync<Subscriber>(new CommandDefinition($"""
                update subscribers set status = 'unsubscribed', unsubscribed_at = @now, confirmation_requested_at = null, updated_at = @now
                where id = @Id returning {SubscriberStore.Columns}
                """, new { current.Id, now }, tx, cancellationToken: ct));
            runs = (await SendLedger.CancelForSubscriberAsync(connection, tx, current.Id, "the subscriber unsubscribed", now, ct)).ToList();
            await RecordAsync(connection, tx, current.Id, "unsubscribed", source, null, client, ct);
            await tx.CommitAsync(ct);
        }
        await ledger.TryCompleteAsync(runs, ct);
        return updated;
    }

    /// <summary>Makes an unsubscribed (or bounced) subscriber active again from a signed link: the link proves the mailbox.</summary>
    public async Task<Subscriber?> ResubscribeAsync(Guid publicId, ChangeSource source, ClientInfo client, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var current = await LockAsync(connection, tx, publicId, ct);
        if (current is null) return null;
        if (current.Status is not (SubscriberStatus.Unsubscribed or SubscriberStatus.Bounced or SubscriberStatus.Pending)) return current;
        var updated = await ActivateAsync(connection, tx, current.Id, Now(), ct);
        await RecordAsync(connection, tx, current.Id, current.ConfirmedAt is null ? "confirmed" : "resubscribed", source, null, client, ct);
        await tx.CommitAsync(ct);
        return updated;
    }

    /// <summary>Changes cadence, language, name and delivery time (null: unchanged; an empty name clears it); each change is recorded.</summary>
    public async Task<Subscriber?> UpdatePreferencesAsync(Guid publicId, Cadence? cadence, Language? language, string? name, ChangeSource source, ClientInfo client,
        CancellationToken ct = default, DeliveryTime? time = null, bool? clickTracking = null)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var current = await LockAsync(connection, tx, publicId, ct);
        if (current is null) return null;
        var newName = name is null ? current.Name : name.Length == 0 ? null : name;
        var newCadence = cadence ?? current.Cadence;
        var newLanguage = language ?? current.Language;
        var newTime = time ?? current.Time;
        var newTracking = clickTracking ?? current.ClickTracking;
        var updated = await connection.QuerySingleAsync<Subscriber>(new CommandDefinition($"""
            update subscribers set cadence = @cadence, language = @language, name = @name,
                time_zone = @zone, delivery_hour = @hour, weekly_day = @weekday, click_tracking = @tracking, updated_at = @now
            where id = @Id returning {SubscriberStore.Columns}
            """, new
        {
            current.Id, cadence = Wire.Name(newCadence), language = Wire.Name(newLanguage), name = newName,
            zone = newTime.TimeZone, hour = (short?)newTime.Hour, weekday = (short?)newTime.WeeklyDay, tracking = newTracking, now = Now(),
        }, tx, cancellationToken: ct));
        if (newTracking != current.ClickTracking)
            await RecordAsync(connection, tx, current.Id, "click_tracking_changed", source, newTracking ? "on" : "off", client, ct);
        if (newCadence != current.Cadence)
            await RecordAsync(connection, tx, current.Id, "cadence_changed", source, $"{Wire.Name(current.Cadence)} -> {Wire.Name(newCadence)}", client, ct);
        if (newLanguage != current.Language)
            await RecordAsync(connection, tx, current.Id, "language_changed", source, $"{Wire.Name(current.Language)} -> {Wire.Name(newLanguage)}", client, ct);
        if (newName != current.Name)
            await RecordAsync(connection, tx, current.Id, "name_changed", source, null, client, ct);
        if (newTime != current.Time)
            await RecordAsync(connection, tx, current.Id, "delivery_time_changed", source, $"{SubscriberStore.Describe(current.Time)} -> {SubscriberStore.Describe(newTime)}", client, ct);
        await tx.CommitAsync(ct);
        return updated;
    }

    public async Task<Subscriber?> FindAsync(Guid publicId, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return await connection.QuerySingleOrDefaultAsync<Subscriber>(new CommandDefinition(
            $"select {SubscriberStore.Columns} from subscribers where public_id = @publicId", new { publicId }, cancellationToken: ct));
    }

    /// <summary>A subscriber's history, oldest first; null when no subscriber has the address.</summary>
    public async Task<IReadOnlyList<SubscriptionEvent>?> HistoryAsync(string email, CancellationToken ct = default)
    {
        email = Validation.EmailAddress.Parse("email", email);
        await using var connection = await db.OpenConnectionAsync(ct);
        var id = await connection.ExecuteScalarAsync<long?>(new CommandDefinition(
            "select id from subscribers where lower(email) = lower(@email)", new { email }, cancellationToken: ct));
        if (id is null) return null;
        return (await connection.QueryAsync<SubscriptionEvent>(new CommandDefinition("""
            select at, event, source, detail, client_address, user_agent from subscription_events where subscriber_id = @id order by id
            """, new { id }, cancellationToken: ct))).ToList();
    }

    /// <summary>Writes one history entry inside the caller's transaction.</summary>
    internal static Task RecordAsync(NpgsqlConnection connection, NpgsqlTransaction tx, long subscriberId, DateTime at, string @event, ChangeSource source,
        string? detail, ClientInfo client, CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition("""
            insert into subscription_events (subscriber_id, at, event, source, detail, client_address, user_agent)
            values (@subscriberId, @at, @event, @source, left(@detail, 500), left(@address, 64), left(@agent, 500))
            """, new { subscriberId, at, @event, source = SourceName(source), detail, address = client.Address, agent = client.UserAgent }, tx, cancellationToken: ct));

    private Task RecordAsync(NpgsqlConnection connection, NpgsqlTransaction tx, long subscriberId, string @event, ChangeSource source,
        string? detail, ClientInfo client, CancellationToken ct) =>
        RecordAsync(connection, tx, subscriberId, Now(), @event, source, detail, client, ct);

    public static string SourceName(ChangeSource source) => source switch
    {
        ChangeSource.OneClick => "one-click",
        _ => source.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// The mailbox does not exist (a 5xx on RCPT): the subscriber becomes bounced, with the server's
    /// reply, and the change is in their history. Written with the lane's next ledger write.
    /// </summary>
    internal static void MarkBounced(LedgerWriter writer, long subscriberId, string? reply, DateTime now) => writer.Add("""
        with bounced as (
            update subscribers set status = 'bounced', status_reason = $2, updated_at = $3 where id = $1 and status = 'active' returning id
        )
        insert into subscription_events (subscriber_id, at, event, source, detail)
        select id, $3, 'bounced', 'bounce', left($2, 500) from bounced
        """, subscriberId, reply, now);

    private static Task<Subscriber?> LockAsync(NpgsqlConnection connection, NpgsqlTransaction tx, Guid publicId, CancellationToken ct) =>
        connection.QuerySingleOrDefaultAsync<Subscriber>(new CommandDefinition(
            $"select {SubscriberStore.Columns} from subscribers where public_id = @publicId for update", new { publicId }, tx, cancellationToken: ct));

    private Task<Subscriber> ActivateAsync(NpgsqlConnection connection, NpgsqlTransaction tx, long id, DateTime now, CancellationToken ct) =>
        connection.QuerySingleAsync<Subscriber>(new CommandDefinition($"""
            update subscribers set status = 'active', confirmed_at = @now, unsubscribed_at = null, status_reason = null,
                confirmation_requested_at = null, updated_at = @now,
                issues_from = {SubscriberStore.IssuesFromNow}
            where id = @id returning {SubscriberStore.Columns}
            """, new { id, now, backfill = delivery.Value.BackfillLatest }, tx, cancellationToken: ct));

    private DateTime Now() => clock.GetUtcNow().UtcDateTime;
}
