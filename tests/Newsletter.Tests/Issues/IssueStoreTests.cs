using Newsletter.Issues;
using Newsletter.Tests.Infrastructure;
using Newsletter.Validation;

namespace Newsletter.Tests.Issues;

public sealed class IssueStoreTests
{
    [Fact]
    public async Task An_imported_issue_round_trips_with_its_items_in_order()
    {
        await using var db = await TestDatabase.CreateAsync();
        var store = db.Issues();
        var document = SampleIssue.Document;

        await store.ImportAsync(document, publish: false);
        var stored = await store.GetAsync(document.Slug);

        Assert.NotNull(stored);
        Assert.Equal(IssueStatus.Draft, stored.Status);
        Assert.Null(stored.PublishedAt);
        Assert.Equal(document.Title, stored.Title);
        Assert.Equal(document.Intro, stored.Intro);
        Assert.Equal(document.PeriodFrom, stored.PeriodFrom);
        Assert.Equal(document.PeriodTo, stored.PeriodTo);
        Assert.Equal(document.Items.Count, stored.Items.Count);
        for (var i = 0; i < document.Items.Count; i++)
        {
            Assert.Equal(document.Items[i].Title, stored.Items[i].Title);
            Assert.Equal(document.Items[i].Summary, stored.Items[i].Summary);
            Assert.Equal(document.Items[i].Abstract, stored.Items[i].Abstract);
            Assert.Equal(document.Items[i].Links, stored.Items[i].Links);
        }
    }

    [Fact]
    public async Task Publishing_sets_the_time_from_the_clock_and_is_idempotent()
    {
        await using var db = await TestDatabase.CreateAsync();
        var clock = new FixedClock(new DateTimeOffset(2024, 4, 29, 0, 0, 0, TimeSpan.Zero));
        var store = db.Issues(clock);
        await store.ImportAsync(SampleIssue.Document, publish: false);

        Assert.True(await store.PublishAsync("top-ml-papers-2024-04-22"));
        Assert.False(await store.PublishAsync("top-ml-papers-2024-04-22"));

        var stored = await store.GetAsync("top-ml-papers-2024-04-22");
        Assert.Equal(IssueStatus.Published, stored!.Status);
        Assert.Equal(clock.GetUtcNow().UtcDateTime, stored.PublishedAt);
    }

    [Fact]
    public async Task Publishing_an_unknown_slug_is_not_found()
    {
        await using var db = await TestDatabase.CreateAsync();
        var error = await Assert.ThrowsAsync<NotFoundException>(() => db.Issues().PublishAsync("nope"));
        Assert.Equal("slug", error.Field);
    }

    [Fact]
    public async Task Reimporting_a_draft_replaces_it_whole()
    {
        await using var db = await TestDatabase.CreateAsync();
        var store = db.Issues();
        await store.ImportAsync(SampleIssue.Document, publish: false);
        var shorter = SampleIssue.Document with { Items = SampleIssue.Document.Items.Take(2).ToList(), Title = new LocalizedText("새 제목", null) };

        await store.ImportAsync(shorter, publish: false);
        var stored = await store.GetAsync(shorter.Slug);

        Assert.Equal(2, stored!.Items.Count);
        Assert.Equal("새 제목", stored.Title.Ko);
        Assert.Null(stored.Title.En);
        Assert.Equal(1L, await db.ScalarAsync<long>("select count(*) from issues"));
    }

    [Fact]
    public async Task A_published_issue_cannot_be_replaced_by_an_import()
    {
        await using var db = await TestDatabase.CreateAsync();
        var store = db.Issues();
        await store.ImportAsync(SampleIssue.Document, publish: true);
        var changed = SampleIssue.Document with { Items = SampleIssue.Document.Items.Take(1).ToList() };

        var error = await Assert.ThrowsAsync<ConflictException>(() => store.ImportAsync(changed, publish: false));

        Assert.Equal("slug", error.Field);
        Assert.Equal(10, (await store.GetAsync(changed.Slug))!.Items.Count);
    }

    [Fact]
    public async Task Issues_are_listed_newest_first_and_can_be_filtered_by_status()
    {
        await using var db = await TestDatabase.CreateAsync();
        var store = db.Issues();
        await store.ImportAsync(SampleIssue.Document with { Slug = "first" }, publish: true);
        await store.ImportAsync(SampleIssue.Document with { Slug = "second" }, publish: true);
        await store.ImportAsync(SampleIssue.Document with { Slug = "draft-one" }, publish: false);

        Assert.Equal(["draft-one", "second", "first"], (await store.ListAsync()).Select(i => i.Slug));
        Assert.Equal(["second", "first"], (await store.ListAsync(IssueStatus.Published)).Select(i => i.Slug));
    }
}
