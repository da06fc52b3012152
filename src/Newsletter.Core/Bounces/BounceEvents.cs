using Dapper;
using Npgsql;

namespace Newsletter.Bounces;

/// <summary>A bounce or complaint as an admin sees it.</summary>
public sealed record BounceEvent(long Id, DateTime ReceivedAt, string Kind, string? Status, string Reason, string? Diagnostic, string Source,
    string Email, long DeliveryId, long RunId);

/// <summary>What came back for one run: its sent messages and the reports about them, by kind.</summary>
public sealed record RunBounces(long RunId, DateTime StartedAt, long Sent, long Hard, long Soft, long Block, long Complaint)
{
    public double Rate(long count) => Sent == 0 ? 0 : (double)count / Sent;
}

/// <summary>The stored bounces and complaints, newest last, keyset-paged by id.</summary>
public sealed class BounceEvents(NpgsqlDataSource db)
{
    public async Task<IReadOnlyList<BounceEvent>> PageAsync(BounceKind? kind, long after, int limit, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return (await connection.QueryAsync<BounceEvent>(new CommandDefinition("""
            select b.id as Id, b.received_at as ReceivedAt, b.kind as Kind, b.status as Status, b.reason as Reason, b.diagnostic as Diagnostic,
                   b.source as Source, s.email as Email, b.delivery_id as DeliveryId, b.run_id as RunId
            from bounce_events b join subscribers s on s.id = b.subscriber_id
            where b.id > @after and (@kind::text is null or b.kind = @kind)
            order by b.id limit @limit
            """, new { after, limit, kind = kind is null ? null : BounceKinds.Name(kind.Value) }, cancellationToken: ct))).ToList();
    }

    /// <summary>The bounces and complaints of the latest <paramref name="runs"/> runs (or of one), oldest first.</summary>
    public async Task<IReadOnlyList<RunBounces>> PerRunAsync(int runs, long? runId = null, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return (await connection.QueryAsync<RunBounces>(new CommandDefinition("""
            select r.id as RunId, r.started_at as StartedAt,
                   (select count(*) from deliveries d where d.run_id = r.id and d.status = 'sent') as Sent,
                   count(b.id) filter (where b.kind = 'hard') as Hard, count(b.id) filter (where b.kind = 'soft') as Soft,
                   count(b.id) filter (where b.kind = 'block') as Block, count(b.id) filter (where b.kind = 'complaint') as Complaint
            from (select id, created_at as started_at from runs where @runId::bigint is null or id = @runId order by id desc limit @runs) r
            left join bounce_events b on b.run_id = r.id
            group by r.id, r.started_at
            order by r.id
            """, new { runs, runId }, cancellationToken: ct))).ToList();
    }

    /// <summary>The kinds a bounce event can have (auto-replies and notices are never stored).</summary>
    public static readonly BounceKind[] StoredKinds = [BounceKind.Hard, BounceKind.Soft, BounceKind.Block, BounceKind.Complaint];

    public static BounceKind ParseKind(string field, string value) =>
        StoredKinds.FirstOrDefault(k => BounceKinds.Name(k) == value, (BounceKind)(-1)) is var kind && kind >= 0 ? kind
        : throw new Validation.InputException(field, $"must be one of {string.Join(", ", StoredKinds.Select(BounceKinds.Name))} (got '{Validation.TextRules.Shorten(value)}')",
            Validation.InputRule.NotOneOf);
}
