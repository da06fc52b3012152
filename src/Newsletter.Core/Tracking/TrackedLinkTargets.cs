using System.Collections.Concurrent;
using Dapper;
using Newsletter.Issues;
using Npgsql;

namespace Newsletter.Tracking;

/// <summary>
/// Where a tracked link goes: the URL at its place in its issue as the issue stands now, unless
/// the delivery it was made for was erased with its reader. A link a correction removed, an issue
/// that is not published, or an erased delivery has no target (the endpoint answers 404). No
/// request costs a query: an issue's links are kept for <see cref="Lifetime"/>, and the erased
/// deliveries (table <c>erased_deliveries</c>, by number only) are read again when that list is
/// older than <see cref="Lifetime"/>, only what was added since. A correction or an erasure made
/// by this process takes effect at once, one made by another process within that time.
/// </summary>
public sealed class TrackedLinkTargets
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(30);

    private readonly NpgsqlDataSource _db;
    private readonly IssueStore _issueStore;
    private readonly TimeProvider _clock;
    private readonly ConcurrentDictionary<long, (DateTimeOffset Until, string[][]? Links)> _issues = new();
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private volatile Erased _erased = new([], 0, DateTimeOffset.MinValue);

    private sealed record Erased(HashSet<long> Deliveries, long Seq, DateTimeOffset Until);

    public TrackedLinkTargets(NpgsqlDataSource db, IssueStore issues, Subscribers.SubscriberStore subscribers, TimeProvider clock)
    {
        _db = db;
        _issueStore = issues;
        _clock = clock;
        issues.Changed += id => _issues.TryRemove(id, out _);
        subscribers.Erased += () => _erased = _erased with { Until = DateTimeOffset.MinValue };
    }

    /// <summary>The URL to send the request to, or null when the link has no target.</summary>
    public async ValueTask<string?> FindAsync(ClickPlace place, CancellationToken ct)
    {
        var now = _clock.GetUtcNow();
        if (!_issues.TryGetValue(place.IssueId, out var issue) || issue.Until < now)
        {
            var found = place.IssueId > 0 ? (await _issueStore.GetByIdsAsync([place.IssueId], ct)).SingleOrDefault() : null;
            issue = (now + Lifetime, found is { Status: IssueStatus.Published }
                ? found.Items.Select(i => i.Links.Select(l => l.Url).ToArray()).ToArray()
                : null);
            _issues[place.IssueId] = issue;
        }
        if (issue.Links is not { } papers || place.Item >= papers.Length || place.Link >= papers[place.Item].Length) return null;
        var erased = _erased.Until < now ? await RefreshErasedAsync(now, ct) : _erased;
        return erased.Deliveries.Contains(place.DeliveryId) ? null : papers[place.Item][place.Link];
    }

    private async Task<Erased> RefreshErasedAsync(DateTimeOffset now, CancellationToken ct)
    {
        await _refresh.WaitAsync(ct);
        try
        {
            var current = _erased;
            if (current.Until >= now) return current; // another request just did it
            await using var connection = await _db.OpenConnectionAsync(ct);
            var added = (await connection.QueryAsync<(long Seq, long DeliveryId)>(new CommandDefinition(
                "select seq, delivery_id from erased_deliveries where seq > @seq order by seq", new { seq = current.Seq }, cancellationToken: ct))).ToList();
            var deliveries = added.Count == 0 ? current.Deliveries : new HashSet<long>(current.Deliveries.Concat(added.Select(a => a.DeliveryId)));
            return _erased = new Erased(deliveries, added.Count == 0 ? current.Seq : added[^1].Seq, now + Lifetime);
        }
        finally
        {
            _refresh.Release();
        }
    }
}
