using System.Text.Json;
using Dapper;
using Newsletter.Validation;
using Npgsql;

namespace Newsletter.Issues;

/// <summary>Issues and their paper items in PostgreSQL. Published issues are immutable.</summary>
public sealed class IssueStore(NpgsqlDataSource db, TimeProvider clock)
{
    private const string IssueColumns = "id, slug, title_ko, title_en, intro_ko, intro_en, period_from, period_to, status, published_at, created_at";

    /// <summary>Raised in this process after an issue's content changed (an import or a correction), with the issue's id.</summary>
    public event Action<long>? Changed;

    /// <summary>
    /// Stores <paramref name="document"/> as a draft (replacing a draft with the same slug), and publishes it
    /// when asked, all in one transaction: an import either lands whole or not at all.
    /// </summary>
    /// <exception cref="ConflictException">An issue with this slug is already published (and this is not a <paramref name="correction"/>).</exception>
    /// <param name="correction">Replaces the content of a published issue (it stays published; the correction is dated).</param>
    public async Task<Issue> ImportAsync(IssueDocument document, bool publish, CancellationToken ct = default, bool correction = false)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);

        var existing = await connection.QuerySingleOrDefaultAsync<(long Id, string Status)?>(new CommandDefinition(
            "select id, status from issues where slug = @Slug for update", new { document.Slug }, tx, cancellationToken: ct));
        if (existing is { Status: "published" } && !correction)
            throw new ConflictException("slug", $"issue '{document.Slug}' is already published, and published issues cannot be changed (except as a correction)");
        if (existing is not { Status: "published" } && correction)
            throw new ConflictException("correction", $"issue '{document.Slug}' is not published; a draft is simply replaced");

        var values = new
        {
            document.Slug,
            TitleKo = document.Title.Ko,
            TitleEn = document.Title.En,
            IntroKo = document.Intro?.Ko,
            IntroEn = document.Intro?.En,
            // Sent as timestamps and cast to date by the column: Dapper has no DateOnly parameter mapping.
            PeriodFrom = document.PeriodFrom?.ToDateTime(TimeOnly.MinValue),
            PeriodTo = document.PeriodTo?.ToDateTime(TimeOnly.MinValue),
        };
        long id;
        try
        {
            id = existing is { } row
                ? await connection.ExecuteScalarAsync<long>(new CommandDefinition("""
                    update issues set title_ko = @TitleKo, title_en = @TitleEn, intro_ko = @IntroKo, intro_en = @IntroEn,
                                      period_from = @PeriodFrom, period_to = @PeriodTo, updated_at = now(),
                                      corrected_at = case when @correction then @now else corrected_at end
                    where id = @Id returning id
                    """, new { values.Slug, values.TitleKo, values.TitleEn, values.IntroKo, values.IntroEn, values.PeriodFrom, values.PeriodTo, row.Id, correction, now = clock.GetUtcNow().UtcDateTime }, tx, cancellationToken: ct))
                : await connection.ExecuteScalarAsync<long>(new CommandDefinition("""
                    insert into issues (slug, title_ko, title_en, intro_ko, intro_en, period_from, period_to)
                    values (@Slug, @TitleKo, @TitleEn, @IntroKo, @IntroEn, @PeriodFrom, @PeriodTo)
                    returning id
                    """, values, tx, cancellationToken: ct));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            throw new ConflictException("slug", $"issue '{document.Slug}' was created by someone else at the same time; import again");
        }

        await connection.ExecuteAsync(new CommandDefinition("delete from issue_items where issue_id = @id", new { id }, tx, cancellationToken: ct));
        // One statement for all items: unnest the parallel arrays.
        await connection.ExecuteAsync(new CommandDefinition("""
            insert into issue_items (issue_id, position, title_ko, title_en, summary_ko, summary_en, abstract_ko, abstract_en, links)
            select @id, i.position - 1, i.title_ko, i.title_en, i.summary_ko, i.summary_en, i.abstract_ko, i.abstract_en, i.links::jsonb
            from unnest(@TitlesKo, @TitlesEn, @SummariesKo, @SummariesEn, @AbstractsKo, @AbstractsEn, @Links)
                 with ordinality as i(title_ko, title_en, summary_ko, summary_en, abstract_ko, abstract_en, links, position)
            """,
            new
            {
                id,
                TitlesKo = document.Items.Select(i => i.Title.Ko).ToArray(),
                TitlesEn = document.Items.Select(i => i.Title.En).ToArray(),
                SummariesKo = document.Items.Select(i => i.Summary.Ko).ToArray(),
                SummariesEn = document.Items.Select(i => i.Summary.En).ToArray(),
                AbstractsKo = document.Items.Select(i => i.Abstract?.Ko).ToArray(),
                AbstractsEn = document.Items.Select(i => i.Abstract?.En).ToArray(),
                Links = document.Items.Select(i => JsonSerializer.Serialize(i.Links.Select(l => new StoredLink(l.Label, l.Url)))).ToArray(),
            }, tx, cancellationToken: ct));

        if (publish)
            await PublishAsync(connection, tx, document.Slug, ct);
        await tx.CommitAsync(ct);
        var imported = (await GetAsync(document.Slug, ct))!;
        Changed?.Invoke(imported.Id);
        return imported;
    }

    /// <summary>Deletes a draft and its items.</summary>
    /// <exception cref="NotFoundException">No issue has this slug.</exception>
    /// <exception cref="ConflictException">The issue is published.</exception>
    public async Task DeleteDraftAsync(string slug, CancellationToken ct = default)
    {
        KnownSlug(slug);
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var status = await connection.QuerySingleOrDefaultAsync<string>(new CommandDefinition(
            "select status from issues where slug = @slug for update", new { slug }, tx, cancellationToken: ct))
            ?? throw new NotFoundException("slug", $"no issue is called '{slug}'");
        if (status == "published")
            throw new ConflictException("slug", $"issue '{slug}' is published and cannot be deleted");
        await connection.ExecuteAsync(new CommandDefinition("delete from issues where slug = @slug", new { slug }, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
    }

    /// <summary>Publishes a draft. Returns false when it was already published.</summary>
    /// <exception cref="NotFoundException">No issue has this slug.</exception>
    public async Task<bool> PublishAsync(string slug, CancellationToken ct = default)
    {
        KnownSlug(slug);
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var changed = await PublishAsync(connection, tx, slug, ct);
        await tx.CommitAsync(ct);
        return changed;
    }

    private async Task<bool> PublishAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string slug, CancellationToken ct)
    {
        var status = await connection.QuerySingleOrDefaultAsync<string>(new CommandDefinition(
            "select status from issues where slug = @slug for update", new { slug }, tx, cancellationToken: ct))
            ?? throw new NotFoundException("slug", $"no issue is called '{slug}'");
        if (status == "published") return false;
        // Publications in order, each at a time after every earlier one's (the delivery ledger relies
        // on it: an issue published before another was visible to every enqueue that saw the later
        // one). The lock serialises publishing; the time is the clock's unless that would not be later.
        await connection.ExecuteAsync(new CommandDefinition("select pg_advisory_xact_lock(hashtext('newsletter/publish'))", transaction: tx, cancellationToken: ct));
        await connection.ExecuteAsync(new CommandDefinition("""
            update issues set status = 'published', updated_at = @now,
                published_at = greatest(@now, (select max(published_at) + interval '1 microsecond' from issues where status = 'published'))
            where slug = @slug
            """, new { slug, now = clock.GetUtcNow().UtcDateTime }, tx, cancellationToken: ct));
        return true;
    }

    /// <summary>The issue called <paramref name="slug"/>, or null (also for a text that cannot be a slug).</summary>
    public async Task<Issue?> GetAsync(string slug, CancellationToken ct = default)
    {
        if (!IssueDocument.IsSlug(slug)) return null;
        await using var connection = await db.OpenConnectionAsync(ct);
        var row = await connection.QuerySingleOrDefaultAsync<IssueRow>(new CommandDefinition(
            $"select {IssueColumns} from issues where slug = @slug", new { slug }, cancellationToken: ct));
        if (row is null) return null;
        var items = await LoadItemsAsync(connection, [row.Id], ct);
        return row.ToIssue(items.GetValueOrDefault(row.Id, []));
    }

    /// <summary>A text that cannot be a slug names no issue (and never reaches a query).</summary>
    private static void KnownSlug(string slug)
    {
        if (!IssueDocument.IsSlug(slug)) throw new NotFoundException("slug", $"no issue is called '{TextRules.Shorten(slug)}'");
    }

    /// <summary>The issues with these ids, with their items.</summary>
    public async Task<IReadOnlyList<Issue>> GetByIdsAsync(long[] ids, CancellationToken ct = default)
    {
        if (ids.Length == 0) return [];
        await using var connection = await db.OpenConnectionAsync(ct);
        var rows = (await connection.QueryAsync<IssueRow>(new CommandDefinition(
            $"select {IssueColumns} from issues where id = any(@ids)", new { ids }, cancellationToken: ct))).ToList();
        var items = await LoadItemsAsync(connection, rows.Select(r => r.Id).ToArray(), ct);
        return rows.Select(r => r.ToIssue(items.GetValueOrDefault(r.Id, []))).ToList();
    }

    /// <summary>Issues newest first, with their items.</summary>
    public async Task<IReadOnlyList<Issue>> ListAsync(IssueStatus? status = null, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        var rows = (await connection.QueryAsync<IssueRow>(new CommandDefinition($"""
            select {IssueColumns} from issues
            where @status::text is null or status = @status::text
            order by coalesce(published_at, created_at) desc, id desc
            """, new { status = status?.ToString().ToLowerInvariant() }, cancellationToken: ct))).ToList();
        var items = await LoadItemsAsync(connection, rows.Select(r => r.Id).ToArray(), ct);
        return rows.Select(r => r.ToIssue(items.GetValueOrDefault(r.Id, []))).ToList();
    }

    /// <summary>The latest <paramref name="limit"/> published issues, newest first, with their items.</summary>
    public async Task<IReadOnlyList<Issue>> ListPublishedAsync(int limit, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        var rows = (await connection.QueryAsync<IssueRow>(new CommandDefinition($"""
            select {IssueColumns} from issues where status = 'published'
            order by published_at desc, id desc limit @limit
            """, new { limit }, cancellationToken: ct))).ToList();
        var items = await LoadItemsAsync(connection, rows.Select(r => r.Id).ToArray(), ct);
        return rows.Select(r => r.ToIssue(items.GetValueOrDefault(r.Id, []))).ToList();
    }

    private static async Task<Dictionary<long, List<IssueItem>>> LoadItemsAsync(NpgsqlConnection connection, long[] ids, CancellationToken ct)
    {
        var rows = await connection.QueryAsync<ItemRow>(new CommandDefinition("""
            select issue_id, position, title_ko, title_en, summary_ko, summary_en, abstract_ko, abstract_en, links::text as links
            from issue_items where issue_id = any(@ids) order by issue_id, position
            """, new { ids }, cancellationToken: ct));
        return rows.GroupBy(r => r.IssueId).ToDictionary(g => g.Key, g => g.Select(r => r.ToItem()).ToList());
    }

    private sealed record StoredLink(string label, string url);

    private sealed class IssueRow
    {
        public long Id { get; init; }
        public string Slug { get; init; } = "";
        public string? TitleKo { get; init; }
        public string? TitleEn { get; init; }
        public string? IntroKo { get; init; }
        public string? IntroEn { get; init; }
        public DateTime? PeriodFrom { get; init; }
        public DateTime? PeriodTo { get; init; }
        public string Status { get; init; } = "draft";
        public DateTime? PublishedAt { get; init; }
        public DateTime CreatedAt { get; init; }

        public Issue ToIssue(IReadOnlyList<IssueItem> items) => new(
            Id, Slug, new LocalizedText(TitleKo, TitleEn),
            IntroKo is null && IntroEn is null ? null : new LocalizedText(IntroKo, IntroEn),
            PeriodFrom is { } f ? DateOnly.FromDateTime(f) : null,
            PeriodTo is { } t ? DateOnly.FromDateTime(t) : null,
            items, Status == "published" ? IssueStatus.Published : IssueStatus.Draft, PublishedAt, CreatedAt);
    }

    private sealed class ItemRow
    {
        public long IssueId { get; init; }
        public int Position { get; init; }
        public string? TitleKo { get; init; }
        public string? TitleEn { get; init; }
        public string? SummaryKo { get; init; }
        public string? SummaryEn { get; init; }
        public string? AbstractKo { get; init; }
        public string? AbstractEn { get; init; }
        public string Links { get; init; } = "[]";

        public IssueItem ToItem() => new(
            new LocalizedText(TitleKo, TitleEn),
            new LocalizedText(SummaryKo, SummaryEn),
            AbstractKo is null && AbstractEn is null ? null : new LocalizedText(AbstractKo, AbstractEn),
            JsonSerializer.Deserialize<List<StoredLink>>(Links)!.Select(l => new IssueLink(l.label, l.url)).ToList());
    }
}
