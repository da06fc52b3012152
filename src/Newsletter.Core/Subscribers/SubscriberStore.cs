using Dapper;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Validation;
using Npgsql;

namespace Newsletter.Subscribers;

/// <summary>Subscribers in PostgreSQL. Email lookups are case-insensitive through the <c>lower(email)</c> unique index.</summary>
public sealed class SubscriberStore(NpgsqlDataSource db, IOptions<DeliveryOptions> delivery, TimeProvider clock)
{
    /// <summary>Raised in this process after a subscriber was erased.</summary>
    public event Action? Erased;

    // Where a subscriber who becomes active now starts receiving issues: now, or with backfill the
    // latest issue already published, so their first digest is not empty.
    internal const string IssuesFromNow = """
        case when @backfill
             then coalesce((select max(published_at) from issues where status = 'published' and published_at <= @now), @now)
             else @now end
        """;

    internal const string Columns = "id, public_id, email, name, cadence, language, time_zone, delivery_hour, weekly_day, click_tracking, status, created_at, confirmed_at, unsubscribed_at";

    /// <summary>Adds an address the admin vouches for, already active.</summary>
    /// <exception cref="ConflictException">The address is already on the list (in any letter case).</exception>
    public async Task<Subscriber> AddActiveAsync(NewSubscriber subscriber, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        try
        {
            await using var tx = await connection.BeginTransactionAsync(ct);
            var now = clock.GetUtcNow().UtcDateTime;
            if (await IsSuppressedAsync(connection, tx, subscriber.Email, ct))
                throw new ConflictException("email", $"'{subscriber.Email}' was erased and is suppressed; only its owner can sign up again, through the form");
            var added = await connection.QuerySingleAsync<Subscriber>(new CommandDefinition($"""
                insert into subscribers (email, name, cadence, language, time_zone, delivery_hour, weekly_day, status, created_at, confirmed_at, updated_at, issues_from)
                values (@Email, @Name, @Cadence, @Language, @zone, @hour, @weekday, 'active', @now, @now, @now, {IssuesFromNow})
                returning {Columns}
                """,
                new
                {
                    subscriber.Email, subscriber.Name, Cadence = Wire.Name(subscriber.Cadence), Language = Wire.Name(subscriber.Language),
                    zone = subscriber.Time?.TimeZone, hour = (short?)subscriber.Time?.Hour, weekday = (short?)subscriber.Time?.WeeklyDay,
                    now, backfill = delivery.Value.BackfillLatest,
                },
                tx, cancellationToken: ct));
            await Subscriptions.RecordAsync(connection, tx, added.Id, now, "subscribed", ChangeSource.Admin, null, ClientInfo.None, ct);
            await tx.CommitAsync(ct);
            return added;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            throw new ConflictException("email", $"'{subscriber.Email}' is already on the list");
        }
    }

    /// <summary>
    /// Changes a subscriber's cadence, language, delivery time or status (null leaves it as it is;
    /// a <paramref name="time"/> replaces all three of its fields, a null field meaning the default).
    /// Becoming active again starts them on issues from now; leaving stops everything still queued
    /// for them (checked when a delivery is claimed).
    /// </summary>
    /// <exception cref="NotFoundException">No subscriber has this address.</exception>
    public async Task<Subscriber> UpdateAsync(string email, Cadence? cadence, Language? language, SubscriberStatus? status, DeliveryTime? time = null,
        CancellationToken ct = default)
    {
        email = EmailAddress.Parse("email", email);
        var now = clock.GetUtcNow().UtcDateTime;
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var old = await connection.QuerySingleOrDefaultAsync<Subscriber>(new CommandDefinition(
            $"select {Columns} from subscribers where lower(email) = lower(@email) for update", new { email }, tx, cancellationToken: ct))
            ?? throw new NotFoundException("email", $"no subscriber has the address '{email}'");
        var updated = await connection.QuerySingleAsync<Subscriber>(new CommandDefinition($"""
            update subscribers set
                cadence = coalesce(@cadence, cadence),
                language = coalesce(@language, language),
                time_zone = case when @setTime then @zone else time_zone end,
                delivery_hour = case when @setTime then @hour else delivery_hour end,
                weekly_day = case when @setTime then @weekday else weekly_day end,
                status = coalesce(@status, status),
                confirmed_at = case when @status = 'active' and status <> 'active' then @now else confirmed_at end,
                issues_from = case when @status = 'active' and status <> 'active' then {IssuesFromNow} else issues_from end,
                unsubscribed_at = case when @status = 'unsubscribed' and status <> 'unsubscribed' then @now
                                       when @status = 'active' then null else unsubscribed_at end,
                status_reason = case when @status = 'active' then null else status_reason end,
                updated_at = @now
            where id = @id
            returning {Columns}
            """,
            new
            {
                old.Id,
                cadence = cadence is { } c ? Wire.Name(c) : null,
                language = language is { } l ? Wire.Name(l) : null,
                status = status is { } st ? Wire.Name(st) : null,
                setTime = time is not null, zone = time?.TimeZone, hour = (short?)time?.Hour, weekday = (short?)time?.WeeklyDay,
                now,
                backfill = delivery.Value.BackfillLatest,
            }, tx, cancellationToken: ct));
        if (updated.Status != old.Status)
        {
            var @event = updated.Status switch
            {
                SubscriberStatus.Active => old.ConfirmedAt is null ? "confirmed" : "resubscribed",
                SubscriberStatus.Unsubscribed => "unsubscribed",
                SubscriberStatus.Bounced => "bounced",
                _ => null,
            };
            if (@event is not null)
                await Subscriptions.RecordAsync(connection, tx, old.Id, now, @event, ChangeSource.Admin, $"{Wire.Name(old.Status)} -> {Wire.Name(updated.Status)}", ClientInfo.None, ct);
            // An admin who puts a bounced or complaining subscriber back lifts what suppressed them.
            if (updated.Status == SubscriberStatus.Active)
                await connection.ExecuteAsync(new CommandDefinition(
                    "delete from suppressions where email_hash = sha256(convert_to(lower(@email), 'UTF8')) and reason = 'complaint'",
                    new { email = old.Email }, tx, cancellationToken: ct));
        }
        if (updated.Cadence != old.Cadence)
            await Subscriptions.RecordAsync(connection, tx, old.Id, now, "cadence_changed", ChangeSource.Admin, $"{Wire.Name(old.Cadence)} -> {Wire.Name(updated.Cadence)}", ClientInfo.None, ct);
        if (updated.Language != old.Language)
            await Subscriptions.RecordAsync(connection, tx, old.Id, now, "language_changed", ChangeSource.Admin, $"{Wire.Name(old.Language)} -> {Wire.Name(updated.Language)}", ClientInfo.None, ct);
        if (updated.Time != old.Time)
            await Subscriptions.RecordAsync(connection, tx, old.Id, now, "delivery_time_changed", ChangeSource.Admin, $"{Describe(old.Time)} -> {Describe(updated.Time)}", ClientInfo.None, ct);
        await tx.CommitAsync(ct);
        return updated;
    }

    /// <summary>
    /// Erases a subscriber: their row, history and ledger rows go, and an anonymous suppression
    /// (a hash of the address) stays, so no import or admin can add the address again.
    /// </summary>
    /// <exception cref="NotFoundException">No subscriber has this address.</exception>
    public async Task EraseAsync(string email, CancellationToken ct = default)
    {
        email = EmailAddress.Parse("email", email);
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var erased = await connection.ExecuteScalarAsync<string?>(new CommandDefinition(
            "delete from subscribers where lower(email) = lower(@email) returning email", new { email }, tx, cancellationToken: ct))
            ?? throw new NotFoundException("email", $"no subscriber has the address '{email}'");
        await connection.ExecuteAsync(new CommandDefinition("""
            insert into suppressions (email_hash, reason, created_at) values (sha256(convert_to(lower(@erased), 'UTF8')), 'erased', @now)
            on conflict do nothing
            """, new { erased, now = clock.GetUtcNow().UtcDateTime }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        Erased?.Invoke();
    }

    /// <summary>A delivery time for the history: <c>Asia/Seoul 08 monday</c>, with <c>default</c> for each field not chosen.</summary>
    public static string Describe(DeliveryTime t) =>
        $"{t.TimeZone ?? "default"} {(t.Hour is { } h ? h.ToString("00", System.Globalization.CultureInfo.InvariantCulture) : "default")} {(t.WeeklyDay is { } d ? DeliveryTime.WeekdayName(d) : "default")}";

    internal static Task<bool> IsSuppressedAsync(NpgsqlConnection connection, NpgsqlTransaction? tx, string email, CancellationToken ct) =>
        connection.ExecuteScalarAsync<bool>(new CommandDefinition(
            "select exists (select 1 from suppressions where email_hash = sha256(convert_to(lower(@email), 'UTF8')))", new { email }, tx, cancellationToken: ct));

    /// <summary>
    /// One page of subscribers in the order they joined, after the subscriber with id
    /// <paramref name="after"/> (keyset paging: the cost of a page does not grow with its depth).
    /// </summary>
    public async Task<IReadOnlyList<Subscriber>> PageAsync(SubscriberStatus? status, Cadence? cadence, string? query, long after, int limit, CancellationToken ct = default)
    {
        query = TextRules.Search("q", query);
        await using var connection = await db.OpenConnectionAsync(ct);
        var pattern = string.IsNullOrWhiteSpace(query) ? null : "%" + query.Trim().Replace(@"\", @"\\").Replace("%", @"\%").Replace("_", @"\_") + "%";
        return (await connection.QueryAsync<Subscriber>(new CommandDefinition($"""
            select {Columns} from subscribers
            where id > @after
              and (@status::text is null or status = @status::text)
              and (@cadence::text is null or cadence = @cadence::text)
              and (@pattern::text is null or email ilike @pattern::text or name ilike @pattern::text)
            order by id
            limit @limit
            """, new { after, limit, status = status is { } s ? Wire.Name(s) : null, cadence = cadence is { } c ? Wire.Name(c) : null, pattern },
            cancellationToken: ct))).ToList();
    }

    /// <summary>How many subscribers there are by status and cadence.</summary>
    public async Task<IReadOnlyList<(string Status, string Cadence, long Count)>> CountsAsync(CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return (await connection.QueryAsync<(string, string, long)>(new CommandDefinition(
            "select status, cadence, count(*) from subscribers group by status, cadence order by status, cadence", cancellationToken: ct))).ToList();
    }

    /// <exception cref="InputException">The text is not an email address.</exception>
    public async Task<Subscriber?> FindByEmailAsync(string email, CancellationToken ct = default)
    {
        email = EmailAddress.Parse("email", email);
        await using var connection = await db.OpenConnectionAsync(ct);
        return await connection.QuerySingleOrDefaultAsync<Subscriber>(new CommandDefinition(
            $"select {Columns} from subscribers where lower(email) = lower(@email)", new { email }, cancellationToken: ct));
    }

    /// <summary>All subscribers in the order they joined, streamed (the list may be large).</summary>
    public async IAsyncEnumerable<Subscriber> ListAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await foreach (var s in connection.QueryUnbufferedAsync<Subscriber>($"select {Columns} from subscribers order by id").WithCancellation(ct))
            yield return s;
    }
}
