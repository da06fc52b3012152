using Dapper;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;
using Newsletter.Validation;

namespace Newsletter.Tests.Delivery;

public sealed class LedgerTests : DatabaseAndSmtpTest
{
    private readonly FixedClock _clock = new(new DateTimeOffset(2026, 11, 30, 0, 0, 0, TimeSpan.Zero));

    private SmtpTransport Smtp() => new(new SmtpOptions { Host = "127.0.0.1", Port = _smtp.Port, Security = SmtpSecurity.None });

    private DeliveryEngine Engine() => _db.Engine(Smtp(), _clock);

    private async Task<Issue> PublishAsync(string slug)
    {
        _clock.Advance(TimeSpan.FromMinutes(1));
        var d = SampleIssue.Document;
        return await _db.Issues(_clock).ImportAsync(d with { Slug = slug, Title = new LocalizedText($"제목 {slug}", $"Title {slug}"), Items = d.Items.Take(2).ToList() }, publish: true);
    }

    private async Task<Subscriber> SubscribeAsync(string email, Cadence cadence, bool backfill = false)
    {
        _clock.Advance(TimeSpan.FromMinutes(1));
        return await _db.Subscribers(_clock, backfill).AddActiveAsync(new NewSubscriber(email, null, cadence, Language.En));
    }

    /// <summary>The issue slugs each recipient got, in the order they were received.</summary>
    private Dictionary<string, List<string>> Received() => _smtp.Messages
        .SelectMany(m => m.Recipients.Select(r => (r, m.Message.TextBody!)))
        .GroupBy(x => x.r)
        .ToDictionary(g => g.Key, g => g.SelectMany(x => System.Text.RegularExpressions.Regex.Matches(x.Item2, @"/issues/(\S+)").Select(m => m.Groups[1].Value)).ToList());

    [Fact]
    public async Task Many_concurrent_starts_of_the_same_period_make_one_run_and_one_message_per_subscriber()
    {
        await PublishAsync("issue-1");
        for (var i = 0; i < 20; i++) await SubscribeAsync($"reader{i}@example.org", Cadence.Weekly, backfill: true);
        var period = new DateOnly(2026, 11, 30);

        var runs = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => _db.Ledger(_clock).StartDigestAsync(Cadence.Weekly, period))));
        await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Task.Run(() => Engine().DeliverBatchAsync())));
        await Engine().DeliverBatchAsync();

        Assert.Single(runs.Select(r => r.Run.Id).Distinct());
        Assert.Single(runs, r => r.Created);
        var received = Received();
        Assert.Equal(20, received.Count);
        Assert.All(received.Values, slugs => Assert.Equal(["issue-1"], slugs));
        var run = await _db.Ledger().GetAsync(runs[0].Run.Id);
        Assert.Equal(("done", 20, 20), (run!.Status, run.Total, run.Sent));
    }

    [Fact]
    public async Task Deleting_subscribers_removes_their_ledger_rows_and_the_send_history_cannot_be_deleted()
    {
        await PublishAsync("issue-1");
        var gone = await SubscribeAsync("gone@example.org", Cadence.Weekly, backfill: true);
        await SubscribeAsync("stays@example.org", Cadence.Weekly, backfill: true);
        await _db.Ledger(_clock).StartDigestAsync(Cadence.Weekly, null);
        await Engine().DeliverBatchAsync();

        await using (var connection = await _db.DataSource.OpenConnectionAsync())
            await connection.ExecuteAsync("delete from subscribers where email = @Email", new { gone.Email });

        Assert.Equal(1L, await _db.ScalarAsync<long>("select count(*) from deliveries"));
        Assert.Equal(1L, await _db.ScalarAsync<long>("select count(*) from receipts"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from receipts r where not exists (select 1 from subscribers s where s.id = r.subscriber_id)"));
        var published = await Assert.ThrowsAsync<Npgsql.PostgresException>(() => _db.ScalarAsync<int>("delete from issues where slug = 'issue-1' returning 1"));
        Assert.Contains("published and cannot be deleted", published.MessageText);
        var runs = await Assert.ThrowsAsync<Npgsql.PostgresException>(() => _db.ScalarAsync<int>("delete from runs returning 1"));
        Assert.Contains("cannot be deleted", runs.MessageText);
    }

    [Fact]
    public async Task A_full_batch_claims_the_next_one_ahead_and_an_engine_that_stops_gives_it_back()
    {
        await PublishAsync("issue-1");
        for (var i = 0; i < 5; i++) await SubscribeAsync($"reader{i}@example.org", Cadence.Weekly, backfill: true);
        var run = (await _db.Ledger(_clock).StartDigestAsync(Cadence.Weekly, null)).Run;

        await using (var engine = _db.Engine(Smtp(), _clock, new DeliveryOptions { BatchSize = 2 }))
        {
            Assert.Equal(2, await engine.DeliverBatchAsync());
            Assert.Equal(2, _smtp.Messages.Count);
            Assert.Equal(2L, await _db.ScalarAsync<long>("select count(*) from deliveries where status = 'claimed'")); // the next batch, claimed ahead
        }
        // Disposed before sending it: the batch claimed ahead is back in the queue, as if never claimed.
        Assert.Equal(3L, await _db.ScalarAsync<long>("select count(*) from deliveries where status = 'queued' and attempts = 0"));

        await using (var engine = _db.Engine(Smtp(), _clock, new DeliveryOptions { BatchSize = 2 }))
            await engine.DeliverRunAsync(run.Id);
        Assert.Equal(5, _smtp.Messages.Count);
        Assert.Equal(5, Received().Count);
        Assert.Equal("done", (await _db.Ledger().GetAsync(run.Id))!.Status);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public async Task The_sender_honours_the_suppression_list_and_an_unsubscribe_that_commits_after_the_claim(int window)
    {
        await PublishAsync("issue-1");
        await SubscribeAsync("suppressed@example.org", Cadence.Weekly, backfill: true);
        var leaving = await SubscribeAsync("leaving@example.org", Cadence.Weekly, backfill: true);
        await SubscribeAsync("reader@example.org", Cadence.Weekly, backfill: true);
        await _db.Ledger(_clock).StartDigestAsync(Cadence.Weekly, null);
        // Both changes come after the deliveries were queued (and, for a worker, possibly claimed).
        await using (var connection = await _db.DataSource.OpenConnectionAsync())
            await connection.ExecuteAsync("insert into suppressions (email_hash, reason) values (sha256(convert_to('suppressed@example.org', 'UTF8')), 'admin')");
        await _db.Subscriptions(_clock).UnsubscribeAsync(leaving.PublicId, ChangeSource.OneClick, ClientInfo.None);

        await using (var engine = _db.Engine(Smtp(), _clock, new DeliveryOptions { SendingWindow = window }))
            await engine.DeliverBatchAsync();

        Assert.Equal(["reader@example.org"], Received().Keys);
        Assert.Equal(2L, await _db.ScalarAsync<long>("select count(*) from deliveries where status = 'cancelled'"));
    }

    [Fact]
    public async Task A_second_start_while_a_run_is_open_returns_the_open_run()
    {
        await SubscribeAsync("reader@example.org", Cadence.Daily);
        await PublishAsync("issue-1");

        var first = await _db.Ledger(_clock).StartDigestAsync(Cadence.Daily, null);
        var second = await _db.Ledger(_clock).StartDigestAsync(Cadence.Daily, null);

        Assert.True(first.Created);
        Assert.False(second.Created);
        Assert.Equal(first.Run.Id, second.Run.Id);
        Assert.Equal(1, second.Run.Total);
    }

    [Fact]
    public async Task Switching_cadence_at_any_moment_neither_drops_nor_repeats_an_issue()
    {
        var reader = await SubscribeAsync("switcher@example.org", Cadence.Daily);
        var ledger = _db.Ledger(_clock);

        await PublishAsync("issue-1");
        await ledger.StartDigestAsync(Cadence.Daily, new DateOnly(2026, 12, 1));
        await Engine().DeliverBatchAsync();

        // Daily to weekly mid-week: the next two issues come in the weekly digest, together.
        await _db.Subscribers(_clock).UpdateAsync(reader.Email, Cadence.Weekly, null, null);
        await PublishAsync("issue-2");
        await ledger.StartDigestAsync(Cadence.Daily, new DateOnly(2026, 12, 2));
        await PublishAsync("issue-3");
        await ledger.StartDigestAsync(Cadence.Weekly, new DateOnly(2026, 12, 7));
        await Engine().DeliverBatchAsync();

        // Back to daily while a weekly delivery is still queued: it goes out once, not again daily.
        await PublishAsync("issue-4");
        await _db.Subscribers(_clock).UpdateAsync(reader.Email, Cadence.Weekly, null, null);
        await ledger.StartDigestAsync(Cadence.Weekly, new DateOnly(2026, 12, 14));
        await _db.Subscribers(_clock).UpdateAsync(reader.Email, Cadence.Daily, null, null);
        await ledger.StartDigestAsync(Cadence.Daily, new DateOnly(2026, 12, 14));
        await PublishAsync("issue-5");
        await ledger.StartDigestAsync(Cadence.Daily, new DateOnly(2026, 12, 15));
        await Engine().DeliverBatchAsync();
        await Engine().DeliverBatchAsync();

        Assert.Equal(["issue-1", "issue-2", "issue-3", "issue-4", "issue-5"], Received()["switcher@example.org"]);
        Assert.Equal(4, _smtp.Messages.Count);
    }

    [Fact]
    public async Task A_broadcast_issue_is_not_in_the_next_digest_and_an_empty_digest_is_not_sent()
    {
        await SubscribeAsync("weekly@example.org", Cadence.Weekly);
        await SubscribeAsync("daily@example.org", Cadence.Daily);
        await PublishAsync("breaking");

        var broadcast = await _db.Ledger(_clock).StartBroadcastAsync("breaking");
        await Engine().DeliverBatchAsync();
        var weekly = await _db.Ledger(_clock).StartDigestAsync(Cadence.Weekly, new DateOnly(2026, 12, 7));
        var daily = await _db.Ledger(_clock).StartDigestAsync(Cadence.Daily, new DateOnly(2026, 12, 1));
        await Engine().DeliverBatchAsync();

        Assert.Equal(2, broadcast.Run.Total);
        Assert.Equal(2, _smtp.Messages.Count);
        Assert.Equal((0, "done"), (weekly.Run.Total, weekly.Run.Status));
        Assert.Equal((0, "done"), (daily.Run.Total, daily.Run.Status));
    }

    [Fact]
    public async Task Unsubscribing_between_enqueue_and_send_sends_nothing_to_that_subscriber()
    {
        var leaving = await SubscribeAsync("leaving@example.org", Cadence.Weekly);
        await SubscribeAsync("staying@example.org", Cadence.Weekly);
        await PublishAsync("issue-1");
        var (run, _) = await _db.Ledger(_clock).StartDigestAsync(Cadence.Weekly, new DateOnly(2026, 12, 7));

        await _db.Subscribers(_clock).UpdateAsync(leaving.Email, null, null, SubscriberStatus.Unsubscribed);
        await Engine().DeliverBatchAsync();

        Assert.Equal(["staying@example.org"], _smtp.Messages.SelectMany(m => m.Recipients));
        var after = await _db.Ledger().GetAsync(run.Id);
        Assert.Equal((1, 1, "done"), (after!.Sent, after.Cancelled, after.Status));
    }

    [Fact]
    public async Task A_new_subscriber_starts_after_joining_and_with_backfill_also_gets_the_latest_issue()
    {
        await PublishAsync("old-1");
        await PublishAsync("old-2");
        await SubscribeAsync("plain@example.org", Cadence.Weekly, backfill: false);
        await SubscribeAsync("backfilled@example.org", Cadence.Weekly, backfill: true);
        await PublishAsync("new-1");

        await _db.Ledger(_clock).StartDigestAsync(Cadence.Weekly, new DateOnly(2026, 12, 7));
        await Engine().DeliverBatchAsync();

        var received = Received();
        Assert.Equal(["new-1"], received["plain@example.org"]);
        Assert.Equal(["old-2", "new-1"], received["backfilled@example.org"]);
    }

    [Fact]
    public async Task Cancelling_a_run_gives_its_unsent_issues_back_to_the_next_digest()
    {
        await SubscribeAsync("reader@example.org", Cadence.Weekly);
        await PublishAsync("issue-1");
        var (first, _) = await _db.Ledger(_clock).StartDigestAsync(Cadence.Weekly, new DateOnly(2026, 12, 7));

        var cancelled = await _db.Ledger(_clock).CancelAsync(first.Id);
        var (next, _) = await _db.Ledger(_clock).StartDigestAsync(Cadence.Weekly, new DateOnly(2026, 12, 14));
        await Engine().DeliverBatchAsync();

        Assert.Equal(("cancelled", 1), (cancelled.Status, cancelled.Cancelled));
        Assert.Equal(1, next.Total);
        Assert.Equal(["issue-1"], Received()["reader@example.org"]);
    }

    [Fact]
    public async Task A_paused_run_sends_nothing_until_resumed()
    {
        await SubscribeAsync("reader@example.org", Cadence.Weekly);
        await PublishAsync("issue-1");
        var (run, _) = await _db.Ledger(_clock).StartDigestAsync(Cadence.Weekly, null);

        await _db.Ledger(_clock).PauseAsync(run.Id, "operator");
        Assert.Equal(0, await Engine().DeliverBatchAsync());
        await _db.Ledger(_clock).ResumeAsync(run.Id);
        await Engine().DeliverBatchAsync();

        Assert.Single(_smtp.Messages);
        Assert.Equal("done", (await _db.Ledger().GetAsync(run.Id))!.Status);
    }

    [Fact]
    public async Task Broadcasting_a_draft_or_an_unknown_issue_is_refused_and_creates_no_run()
    {
        var d = SampleIssue.Document;
        await _db.Issues(_clock).ImportAsync(d with { Slug = "draft-one" }, publish: false);

        Assert.Equal("issue", (await Assert.ThrowsAsync<ConflictException>(() => _db.Ledger(_clock).StartBroadcastAsync("draft-one"))).Field);
        Assert.Equal("issue", (await Assert.ThrowsAsync<NotFoundException>(() => _db.Ledger(_clock).StartBroadcastAsync("nope"))).Field);
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from runs"));
    }

    [Fact]
    public async Task A_second_delivery_of_the_same_issue_is_impossible_at_the_database()
    {
        var reader = await SubscribeAsync("reader@example.org", Cadence.Weekly);
        var issue = await PublishAsync("issue-1");
        var (run, _) = await _db.Ledger(_clock).StartDigestAsync(Cadence.Weekly, null);

        await using var connection = await _db.DataSource.OpenConnectionAsync();
        var delivery = await connection.ExecuteScalarAsync<long>("select id from deliveries where run_id = @Id", new { run.Id });
        var error = await Assert.ThrowsAsync<Npgsql.PostgresException>(() => connection.ExecuteAsync(
            "insert into receipts (subscriber_id, issue_id, delivery_id) values (@s, @i, @d)", new { s = reader.Id, i = issue.Id, d = delivery }));
        Assert.Equal(Npgsql.PostgresErrorCodes.UniqueViolation, error.SqlState);
    }

    [Fact]
    public async Task An_issue_given_back_while_a_newer_one_arrives_by_broadcast_comes_in_the_next_digest()
    {
        await SubscribeAsync("reader@example.org", Cadence.Weekly);
        var ledger = _db.Ledger(_clock);
        await PublishAsync("issue-1");
        var (first, _) = await ledger.StartDigestAsync(Cadence.Weekly, new DateOnly(2026, 12, 7));
        await ledger.CancelAsync(first.Id); // issue-1 goes back
        Assert.Equal(1L, await _db.ScalarAsync<long>("select count(*) from issues_owed"));

        // A newer issue reaches the reader first: it is now the newest they hold, and issue-1 is older.
        await PublishAsync("issue-2");
        await ledger.StartBroadcastAsync("issue-2");
        await Engine().DeliverBatchAsync();
        var (next, _) = await ledger.StartDigestAsync(Cadence.Weekly, new DateOnly(2026, 12, 14));
        await Engine().DeliverBatchAsync();
        var (after, _) = await ledger.StartDigestAsync(Cadence.Weekly, new DateOnly(2026, 12, 21));

        Assert.Equal(["issue-2", "issue-1"], Received()["reader@example.org"]);
        Assert.Equal((1, 1, 0), (next.Total, (await ledger.GetAsync(next.Id))!.Sent, after.Total));
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from issues_owed"));
    }

    [Fact]
    public async Task A_broadcast_that_passes_over_unsent_older_issues_leaves_them_to_the_next_digest()
    {
        await SubscribeAsync("weekly@example.org", Cadence.Weekly);
        var ledger = _db.Ledger(_clock);
        await PublishAsync("issue-1");
        await ledger.StartBroadcastAsync("issue-1");
        await Engine().DeliverBatchAsync();
        var late = await SubscribeAsync("late@example.org", Cadence.Weekly, backfill: true); // joins with the latest issue, issue-1, still to come
        await PublishAsync("issue-2");
        await PublishAsync("issue-3");

        await ledger.StartBroadcastAsync("issue-3"); // both lack it; it passes over issue-2 (and issue-1 for the late reader)
        await Engine().DeliverBatchAsync();
        var (digest, _) = await ledger.StartDigestAsync(Cadence.Weekly, new DateOnly(2026, 12, 7));
        await Engine().DeliverBatchAsync();
        var (again, _) = await ledger.StartDigestAsync(Cadence.Weekly, new DateOnly(2026, 12, 14));

        var received = Received();
        Assert.Equal(["issue-1", "issue-3", "issue-2"], received["weekly@example.org"]);
        Assert.Equal(["issue-3", "issue-1", "issue-2"], received[late.Email]);
        Assert.Equal((2, 0), (digest.Total, again.Total));
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from issues_owed"));
    }

    [Fact]
    public async Task Publication_times_follow_the_order_of_publishing_even_from_a_clock_that_is_behind()
    {
        await SubscribeAsync("reader@example.org", Cadence.Daily);
        var ledger = _db.Ledger(_clock);
        var d = SampleIssue.Document;
        await _db.Issues(_clock).ImportAsync(d with { Slug = "imported-first" }, publish: false);
        await PublishAsync("published-first");
        await ledger.StartDigestAsync(Cadence.Daily, new DateOnly(2026, 12, 1));
        await Engine().DeliverBatchAsync();

        // Another node, its clock an hour behind, publishes the older draft; two more at one instant.
        var behind = new FixedClock(_clock.GetUtcNow().AddHours(-1));
        await _db.Issues(behind).PublishAsync("imported-first");
        await _db.Issues(behind).ImportAsync(d with { Slug = "same-instant-1" }, publish: true);
        await _db.Issues(behind).ImportAsync(d with { Slug = "same-instant-2" }, publish: true);
        _clock.Advance(TimeSpan.FromDays(1));
        await ledger.StartDigestAsync(Cadence.Daily, new DateOnly(2026, 12, 2));
        await Engine().DeliverBatchAsync();

        await using var connection = await _db.DataSource.OpenConnectionAsync();
        var order = (await connection.QueryAsync<string>("select slug from issues where status = 'published' order by published_at")).ToList();
        Assert.Equal(["published-first", "imported-first", "same-instant-1", "same-instant-2"], order);
        Assert.Equal(["published-first", "imported-first", "same-instant-1", "same-instant-2"], Received()["reader@example.org"]);
    }
}
