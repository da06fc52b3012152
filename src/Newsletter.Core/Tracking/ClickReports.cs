using Dapper;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Npgsql;

namespace Newsletter.Tracking;

/// <summary>Human clickers of one group (a language or a cadence) against the digests delivered to it.</summary>
public sealed record ClickGroup(string Name, long Delivered, long Clickers)
{
    /// <summary>Clickers per delivered digest (0 when none was delivered).</summary>
    public double Rate => Delivered == 0 ? 0 : (double)Clickers / Delivered;
}

/// <summary>Unique human clickers of one link, in total and per language and cadence.</summary>
public sealed record LinkClicks(int Link, string Label, string Url, long Clickers, IReadOnlyDictionary<string, long> ByLanguage, IReadOnlyDictionary<string, long> ByCadence);

/// <summary>Unique human clickers of one paper (a reader who opened two of its links counts once).</summary>
public sealed record PaperClicks(int Number, string Title, long Clickers, IReadOnlyDictionary<string, long> ByLanguage, IReadOnlyDictionary<string, long> ByCadence,
    IReadOnlyList<LinkClicks> Links);

/// <summary>What the filter did: every request, the human ones, and the rest by verdict.</summary>
public sealed record ClickFiltering(long Requests, long Human, IReadOnlyDictionary<string, long> Removed);

/// <summary>In per-subscriber mode: one reader's first click on one link.</summary>
public sealed record ReaderClick(string Email, int Paper, int Link, DateTime At);

/// <summary>Which papers of an issue its readers opened.</summary>
public sealed record IssueClicks(
    string Slug,
    string Title,
    string Mode,
    long Delivered,
    long Clickers,
    double Rate,
    IReadOnlyList<ClickGroup> ByLanguage,
    IReadOnlyList<ClickGroup> ByCadence,
    IReadOnlyList<PaperClicks> Papers,
    ClickFiltering Filtered,
    IReadOnlyList<ReaderClick>? Readers);

/// <summary>Reads the click counts of an issue against its deliveries.</summary>
public sealed class ClickReports(NpgsqlDataSource db, IssueStore issues, IOptions<TrackingOptions> options)
{
    public static readonly string[] Languages = ["ko", "en", "both"];
    public static readonly string[] Cadences = ["weekly", "daily", "broadcast"];

    /// <summary>The report of the issue <paramref name="slug"/>; null when there is no such issue.</summary>
    public async Task<IssueClicks?> GetAsync(string slug, CancellationToken ct = default)
    {
        var issue = await issues.GetAsync(slug, ct);
        if (issue is null) return null;
        await using var connection = await db.OpenConnectionAsync(ct);
        var delivered = (await connection.QueryAsync<(string Language, string Cadence, long Count)>(new CommandDefinition("""
            select s.language, r.kind, count(*)
            from receipts rc
            join deliveries d on d.id = rc.delivery_id and d.status = 'sent'
            join runs r on r.id = d.run_id
            join subscribers s on s.id = d.subscriber_id
            where rc.issue_id = @id
            group by s.language, r.kind
            """, new { id = issue.Id }, cancellationToken: ct))).ToList();
        var counts = (await connection.QueryAsync<Count>(new CommandDefinition("""
            select item, link, language, cadence, verdict, requests, clickers, paper_clickers, issue_clickers
            from click_counts where issue_id = @id
            """, new { id = issue.Id }, cancellationToken: ct))).ToList();
        List<ReaderClick>? readers = null;
        var mode = options.Value.Mode;
        if (mode == ClickTrackingMode.PerSubscriber)
            readers = (await connection.QueryAsync<ReaderClick>(new CommandDefinition("""
                select s.email, (c.item + 1)::int as paper, c.link::int as link, c.first_at as at
                from clicks c join subscribers s on s.id = c.subscriber_id
                where c.issue_id = @id order by c.first_at, s.email
                """, new { id = issue.Id }, cancellationToken: ct))).ToList();

        var human = counts.Where(c => c.Verdict == ClickFilter.Human).ToList();
        var papers = issue.Items.Select((item, i) =>
        {
            var ofPaper = human.Where(c => c.Item == i).ToList();
            return new PaperClicks(i + 1, item.Title.For(Language.Ko), ofPaper.Sum(c => c.PaperClickers),
                By(ofPaper, Languages, c => c.Language, c => c.PaperClickers), By(ofPaper, Cadences, c => c.Cadence, c => c.PaperClickers),
                item.Links.Select((link, l) =>
                {
                    var ofLink = ofPaper.Where(c => c.Link == l).ToList();
                    return new LinkClicks(l, link.Label, link.Url, ofLink.Sum(c => c.Clickers),
                        By(ofLink, Languages, c => c.Language, c => c.Clickers), By(ofLink, Cadences, c => c.Cadence, c => c.Clickers));
                }).ToList());
        }).ToList();
        var totalDelivered = delivered.Sum(d => d.Count);
        var clickers = human.Sum(c => c.IssueClickers);
        var byLanguage = Languages.Select(l => new ClickGroup(l, delivered.Where(d => d.Language == l).Sum(d => d.Count),
            human.Where(c => c.Language == l).Sum(c => c.IssueClickers))).ToList();
        var byCadence = Cadences.Select(k => new ClickGroup(k, delivered.Where(d => d.Cadence == k).Sum(d => d.Count),
            human.Where(c => c.Cadence == k).Sum(c => c.IssueClickers))).ToList();
        var removed = counts.Where(c => c.Verdict != ClickFilter.Human).GroupBy(c => c.Verdict)
            .OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Sum(c => c.Requests));
        var filtering = new ClickFiltering(counts.Sum(c => c.Requests), human.Sum(c => c.Requests), removed);
        return new IssueClicks(issue.Slug, issue.Title.For(Language.Ko), TrackingOptions.Name(mode), totalDelivered, clickers,
            totalDelivered == 0 ? 0 : (double)clickers / totalDelivered, byLanguage, byCadence, papers, filtering, readers);
    }

    /// <summary>The numbers (from 1) of the issue's papers with the most human readers (at least one), most first: counts only, no deliveries read.</summary>
    public async Task<IReadOnlyList<int>> MostReadAsync(long issueId, int count, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return (await connection.QueryAsync<int>(new CommandDefinition("""
            select item + 1 from click_counts where issue_id = @issueId and verdict = @human
            group by item having sum(paper_clickers) > 0 order by sum(paper_clickers) desc, item limit @count
            """, new { issueId, count, human = ClickFilter.Human }, cancellationToken: ct))).ToList();
    }

    private static Dictionary<string, long> By(List<Count> rows, string[] keys, Func<Count, string> key, Func<Count, long> value) =>
        keys.ToDictionary(k => k, k => rows.Where(r => key(r) == k).Sum(value));

    private sealed record Count(short Item, short Link, string Language, string Cadence, string Verdict, long Requests, long Clickers, long PaperClickers, long IssueClickers);
}
