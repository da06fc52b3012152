using System.Collections.Concurrent;
using Dapper;
using Newsletter.Issues;
using Npgsql;

namespace Newsletter.Tracking;

/// <summary>
/// Where a tracked link goes: the URL at its place in its issue as the issue stands now, while the
/// delivery it was made for still exists. A link a correction removed, an issue that is not
/// published, or a delivery erased with its reader has no target (the endpoint answers 404). Both
/// lookups are kept in memory for <see cref="Lifetime"/> so a burst of clicks costs no queries; an
/// erasure or a correction made by another process takes effect within that time (one made by
/// this process, at once).
/// </summary>
public sealed class TrackedLinkTargets
{
    private readonly NpgsqlDataSource db;
    private readonly IssueStore issues;
    private readonly TimeProvider clock;

    public TrackedLinkTargets(NpgsqlDataSource db, IssueStore issues, Subscribers.SubscriberStore subscribers, TimeProvider clock)
    {
        this.db = db;
        this.issues = issues;
        this.clock = clock;
        issues.Changed += id => _issues.TryRemove(id, out _);
        subscribers.Erased += () => _deliveries.Clear();
    }

    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(30);
    private const int MaxDeliveries = 200_000;

    private readonly ConcurrentDictionary<long, (DateTimeOffset Until, string[][]? Links)> _issues = new();
    private readonly ConcurrentDictionary<long, DateTimeOffset> _deliveries = new();

    /// <summary>The URL to send the request to, or null when the link has no target.</summary>
    public async ValueTask<string?> FindAsync(ClickPlace place, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        if (!_issues.TryGetValue(place.IssueId, out var issue) || issue.Until < now)
        {
            var found = place.IssueId > 0 ? (await issues.GetByIdsAsync([place.IssueId], ct)).SingleOrDefault() : null;
            issue = (now + Lifetime, found is { Status: IssueStatus.Published }
                ? found.Items.Select(i => i.Links.Select(l => l.Url).ToArray()).ToArray()
                : null);
            _issues[place.IssueId] = issue;
        }
        if (issue.Links is not { } papers || place.Item >= papers.Length || place.Link >= papers[place.Item].Length) return null;
        if (!_deliveries.TryGetValue(place.DeliveryId, out var until) || until < now)
        {
            await using var connection = await db.OpenConnectionAsync(ct);
            if (!await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
                    "select exists (select 1 from deliveries where id = @id)", new { id = place.DeliveryId }, cancellationToken: ct)))
                return null;
            if (_deliveries.Count >= MaxDeliveries) _deliveries.Clear();
            _deliveries[place.DeliveryId] = now + Lifetime;
        }
        return papers[place.Item][place.Link];
    }
}
