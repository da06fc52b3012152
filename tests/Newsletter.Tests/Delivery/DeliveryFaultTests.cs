using Dapper;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;
using static Newsletter.Tests.Infrastructure.ScriptedSmtpServer;

namespace Newsletter.Tests.Delivery;

/// <summary>Each SMTP failure class against a scripted peer, with a real PostgreSQL ledger.</summary>
public sealed class DeliveryFaultTests : IAsyncLifetime
{
    private readonly FixedClock _clock = new(new DateTimeOffset(2026, 11, 30, 0, 0, 0, TimeSpan.Zero));
    private TestDatabase _db = null!;
    private ScriptedSmtpServer _smtp = null!;
    private long _runId;

    public async Task InitializeAsync()
    {
        _db = await TestDatabase.CreateAsync();
        _smtp = new ScriptedSmtpServer();
        await _db.Issues(_clock).ImportAsync(SampleIssue.Document with { Items = SampleIssue.Document.Items.Take(2).ToList() }, publish: true);
    }

    public async Task DisposeAsync()
    {
        await _smtp.DisposeAsync();
        await _db.DisposeAsync();
    }

    private async Task StartRunAsync(params string[] emails)
    {
        foreach (var email in emails)
            await _db.Subscribers(_clock).AddActiveAsync(new NewSubscriber(email, null, Cadence.Weekly, Language.En));
        _runId = (await _db.Ledger(_clock).StartDigestAsync(Cadence.Weekly, null)).Run.Id;
    }

    private DeliveryEngine Engine(int timeoutSeconds = 30, string? username = null, int pauseAfter = 20, int lanes = 1, SmtpSecurity security = SmtpSecurity.None) => _db.Engine(
        new SmtpTransport(new SmtpOptions { Host = "127.0.0.1", Port = _smtp.Port, Security = security, TimeoutSeconds = timeoutSeconds, Username = username, Password = username is null ? null : "secret" }),
        _clock,
        new DeliveryOptions { RetryBaseDelay = TimeSpan.FromMinutes(1), PauseAfterConsecutiveFailures = pauseAfter, Lanes = lanes });

    private async Task<List<(string Email, string Status, string? Error)>> DeliveriesAsync()
    {
        await using var connection = await _db.DataSource.OpenConnectionAsync();
        return (await connection.QueryAsync<(string, string, string?)>(
            "select s.email, d.status, d.last_error from deliveries d join subscribers s on s.id = d.subscriber_id order by d.id")).ToList();
    }

    private async Task<RunSummary> RunAsync() => (await _db.Ledger().GetAsync(_runId))!;

    [Fact]
    public async Task A_server_that_offers_size_is_told_the_exact_size_of_the_message_it_then_gets()
    {
        _smtp.Size = true;
        var mailFrom = new System.Collections.Concurrent.ConcurrentQueue<string>();
        _smtp.MailFromReply = line => { mailFrom.Enqueue(line); return "250 2.1.0 OK"; };
        await StartRunAsync("sized@example.org");
        await using var engine = Engine();

        await engine.DeliverBatchAsync();

        Assert.Equal("sent", Assert.Single(await DeliveriesAsync()).Status);
        var command = Assert.Single(mailFrom);
        var declared = System.Text.RegularExpressions.Regex.Match(command, @"SIZE=(\d+)");
        Assert.True(declared.Success, command);
        Assert.Equal(Assert.Single(_smtp.MessageSizes), long.Parse(declared.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Greylisting_450_is_retried_after_a_backoff_and_then_sent()
    {
        _smtp.RcptReply = (_, attempt) => attempt == 1 ? "450 4.2.0 greylisted, try later" : "250 2.1.5 OK";
        await StartRunAsync("grey@example.org");
        await using var engine = Engine();

        await engine.DeliverBatchAsync();
        var first = Assert.Single(await DeliveriesAsync());
        Assert.Equal("retrying", first.Status);
        Assert.Contains("450", first.Error);
        Assert.Equal(0, await engine.DeliverBatchAsync()); // not due yet
        _clock.Advance(TimeSpan.FromMinutes(2));
        await engine.DeliverBatchAsync();

        Assert.Equal("sent", Assert.Single(await DeliveriesAsync()).Status);
        Assert.Equal(["grey@example.org"], _smtp.Accepted);
        Assert.Equal("done", (await RunAsync()).Status);
    }

    [Fact]
    public async Task A_451_after_data_is_retried_and_a_452_on_rcpt_too()
    {
        _smtp.Data = (r, attempt) => r.StartsWith("data", StringComparison.Ordinal) && attempt == 1 ? DataAction.Reply : DataAction.Accept;
        _smtp.DataReply = (_, _) => "451 4.3.0 local error, try again";
        _smtp.RcptReply = (r, attempt) => r.StartsWith("rcpt", StringComparison.Ordinal) && attempt == 1 ? "452 4.5.3 too many recipients" : "250 OK";
        await StartRunAsync("data451@example.org", "rcpt452@example.org");
        await using var engine = Engine();

        await engine.DeliverBatchAsync();
        Assert.All(await DeliveriesAsync(), d => Assert.Equal("retrying", d.Status));
        _clock.Advance(TimeSpan.FromMinutes(2));
        await engine.DeliverBatchAsync();

        Assert.All(await DeliveriesAsync(), d => Assert.Equal("sent", d.Status));
        Assert.Equal(2, _smtp.Accepted.Count);
    }

    [Fact]
    public async Task A_550_unknown_user_fails_the_delivery_and_marks_the_subscriber_bounced_with_the_reply()
    {
        _smtp.RcptReply = (r, _) => r.StartsWith("gone", StringComparison.Ordinal) ? "550 5.1.1 <gone@example.org>: user unknown" : "250 OK";
        await StartRunAsync("gone@example.org", "here@example.org");
        await using var engine = Engine();

        await engine.DeliverBatchAsync();

        var deliveries = await DeliveriesAsync();
        Assert.Equal(("failed", true), (deliveries[0].Status, deliveries[0].Error!.Contains("5.1.1")));
        Assert.Equal("sent", deliveries[1].Status);
        Assert.Equal("bounced", await _db.ScalarAsync<string>("select status from subscribers where email = 'gone@example.org'"));
        Assert.Contains("user unknown", await _db.ScalarAsync<string>("select status_reason from subscribers where email = 'gone@example.org'"));
        var history = (await _db.Subscriptions().HistoryAsync("gone@example.org"))!;
        Assert.Equal(("bounced", "bounce"), (history[^1].Event, history[^1].Source));
        Assert.Contains("5.1.1", history[^1].Detail);
        var run = await RunAsync();
        Assert.Equal(("done", 1, 1), (run.Status, run.Failed, run.Sent));
    }

    [Fact]
    public async Task A_554_policy_rejection_pauses_the_run_and_resume_continues_where_it_stopped()
    {
        var blocked = true;
        _smtp.Data = (_, _) => blocked ? DataAction.Reply : DataAction.Accept;
        _smtp.DataReply = (_, _) => "554 5.7.1 message refused by policy";
        await StartRunAsync("a@example.org", "b@example.org", "c@example.org");
        await using var engine = Engine();

        await engine.DeliverBatchAsync();
        var paused = await RunAsync();
        Assert.Equal("paused", paused.Status);
        Assert.Contains("5.7.1", paused.PauseReason);
        Assert.Equal(3, paused.Queued);
        Assert.Equal(0, await engine.DeliverBatchAsync());

        blocked = false;
        await _db.Ledger(_clock).ResumeAsync(_runId);
        await engine.DeliverBatchAsync();

        Assert.Equal(("done", 3), ((await RunAsync()).Status, (await RunAsync()).Sent));
        Assert.Equal(3, _smtp.Accepted.Distinct().Count());
        Assert.Equal("active", await _db.ScalarAsync<string>("select status from subscribers where email = 'a@example.org'"));
    }

    [Fact]
    public async Task A_refused_sender_or_failed_auth_pauses_the_run()
    {
        _smtp.AuthReply = "535 5.7.8 authentication credentials invalid";
        await StartRunAsync("a@example.org", "b@example.org");
        await using var engine = Engine(username: "newsletter");

        await engine.DeliverBatchAsync();

        var run = await RunAsync();
        Assert.Equal("paused", run.Status);
        Assert.Contains("authentication", run.PauseReason, StringComparison.OrdinalIgnoreCase);
        Assert.All(await DeliveriesAsync(), d => Assert.Equal("queued", d.Status));
    }

    [Fact]
    public async Task A_failed_tls_handshake_pauses_the_run_instead_of_sending_in_the_clear()
    {
        _smtp.BrokenStartTls = true;
        await StartRunAsync("a@example.org", "b@example.org");
        await using var engine = Engine(security: SmtpSecurity.StartTls);

        await engine.DeliverBatchAsync();

        var run = await RunAsync();
        Assert.Equal("paused", run.Status);
        Assert.Contains("TLS", run.PauseReason);
        Assert.All(await DeliveriesAsync(), d => Assert.Equal("queued", d.Status));
        Assert.DoesNotContain("MAIL", _smtp.Verbs);
        Assert.Empty(_smtp.Accepted);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Messages_go_out_once_each_with_and_without_pipelining(bool pipelining)
    {
        _smtp.Pipelining = pipelining;
        // One recipient refused on RCPT, one refused after DATA: replies must stay matched to their commands.
        _smtp.RcptReply = (rcpt, _) => rcpt.StartsWith("gone", StringComparison.Ordinal) ? "550 5.1.1 no such user" : "250 2.1.5 OK";
        _smtp.Data = (rcpt, _) => rcpt.StartsWith("spam", StringComparison.Ordinal) ? DataAction.Reply : DataAction.Accept;
        _smtp.DataReply = (_, _) => "554 5.6.0 message refused";
        var emails = Enumerable.Range(0, 8).Select(i => $"reader{i}@example.org").Append("gone@example.org").Append("spam@example.org").ToArray();
        await StartRunAsync(emails);
        await using var engine = Engine(lanes: 2);

        await engine.DeliverBatchAsync();

        var deliveries = (await DeliveriesAsync()).ToDictionary(d => d.Email);
        Assert.Equal(emails.Take(8).Order(), _smtp.Accepted.Order());
        Assert.All(emails.Take(8), e => Assert.Equal("sent", deliveries[e].Status));
        Assert.Equal("failed", deliveries["gone@example.org"].Status);
        Assert.Contains("5.1.1", deliveries["gone@example.org"].Error);
        Assert.Equal("failed", deliveries["spam@example.org"].Status);
        Assert.Contains("554", deliveries["spam@example.org"].Error);
    }

    [Fact]
    public async Task A_connection_dropped_during_data_before_the_message_was_complete_is_retried_not_uncertain()
    {
        _smtp.Data = (_, attempt) => attempt == 1 ? DataAction.DropMidData : DataAction.Accept;
        await StartRunAsync("mid@example.org");
        await using var engine = Engine();

        await engine.DeliverBatchAsync();

        // The lane retried at once on a fresh connection (the dropped one was fresh too, so the delivery waits).
        var delivery = Assert.Single(await DeliveriesAsync());
        Assert.Equal("retrying", delivery.Status);
        _clock.Advance(TimeSpan.FromMinutes(2));
        await engine.DeliverBatchAsync();
        Assert.Equal("sent", Assert.Single(await DeliveriesAsync()).Status);
        Assert.Single(_smtp.Accepted);
    }

    [Fact]
    public async Task A_connection_lost_after_the_end_of_data_makes_the_delivery_uncertain_and_it_is_not_resent()
    {
        _smtp.Data = (_, _) => DataAction.DropAfterData;
        await StartRunAsync("lost@example.org");
        await using var engine = Engine();

        await engine.DeliverBatchAsync();
        _clock.Advance(TimeSpan.FromHours(1));
        await engine.DeliverBatchAsync();

        var delivery = Assert.Single(await DeliveriesAsync());
        Assert.Equal("uncertain", delivery.Status);
        Assert.Contains("after the end of DATA", delivery.Error);
        var run = await RunAsync();
        Assert.Equal(("done", 1), (run.Status, run.Uncertain));
    }

    [Fact]
    public async Task A_server_slower_than_the_client_timeout_after_data_makes_the_delivery_uncertain()
    {
        _smtp.Data = (_, _) => DataAction.Stall;
        await StartRunAsync("slow@example.org");
        await using var engine = Engine(timeoutSeconds: 2);

        await engine.DeliverBatchAsync();

        Assert.Equal("uncertain", Assert.Single(await DeliveriesAsync()).Status);
    }

    [Fact]
    public async Task A_421_greeting_again_and_again_pauses_the_run_after_the_configured_number_of_connection_failures()
    {
        _smtp.Greeting = () => "421 4.3.2 service not available, closing channel";
        await StartRunAsync("a@example.org", "b@example.org", "c@example.org", "d@example.org");
        await using var engine = Engine(pauseAfter: 3);

        await engine.DeliverBatchAsync();

        var run = await RunAsync();
        Assert.Equal("paused", run.Status);
        Assert.Contains("consecutive connection failures", run.PauseReason);
        Assert.Empty(_smtp.Accepted);
        Assert.DoesNotContain(await DeliveriesAsync(), d => d.Status is "failed" or "uncertain" or "sent");
    }

    [Fact]
    public async Task A_connection_the_server_closed_is_replaced_and_each_message_is_sent_once()
    {
        _smtp.CloseAfterMessages = 1;
        await StartRunAsync("one@example.org", "two@example.org", "three@example.org");
        await using var engine = Engine();

        await engine.DeliverBatchAsync();

        Assert.All(await DeliveriesAsync(), d => Assert.Equal("sent", d.Status));
        Assert.Equal(["one@example.org", "three@example.org", "two@example.org"], _smtp.Accepted.Order());
        Assert.True(_smtp.Connections >= 3);
    }

    [Fact]
    public async Task The_smtp_server_down_at_the_start_is_retried_and_reached_when_it_is_back()
    {
        _smtp.Down = true;
        await StartRunAsync("later@example.org");
        await using var engine = Engine();

        await engine.DeliverBatchAsync();
        Assert.Equal("retrying", Assert.Single(await DeliveriesAsync()).Status);
        _smtp.Down = false;
        _clock.Advance(TimeSpan.FromMinutes(2));
        await engine.DeliverBatchAsync();

        Assert.Equal("sent", Assert.Single(await DeliveriesAsync()).Status);
        Assert.Equal(["later@example.org"], _smtp.Accepted);
    }

    [Fact]
    public async Task Resend_requeues_only_the_kind_asked_for_and_reopens_the_run()
    {
        _smtp.Data = (r, attempt) => r.StartsWith("lost", StringComparison.Ordinal) && attempt == 1 ? DataAction.DropAfterData : DataAction.Accept;
        _smtp.RcptReply = (r, _) => r.StartsWith("gone", StringComparison.Ordinal) ? "550 5.1.1 user unknown" : "250 OK";
        await StartRunAsync("lost@example.org", "gone@example.org", "fine@example.org");
        await using var engine = Engine();
        await engine.DeliverBatchAsync();
        Assert.Equal(("done", 1, 1, 1), ((await RunAsync()).Status, (await RunAsync()).Uncertain, (await RunAsync()).Failed, (await RunAsync()).Sent));

        await Assert.ThrowsAsync<Newsletter.Validation.InputException>(() => _db.Ledger(_clock).ResendAsync(_runId, failed: false, uncertain: false));
        var (reopened, requeued) = await _db.Ledger(_clock).ResendAsync(_runId, failed: false, uncertain: true);
        await engine.DeliverBatchAsync();

        Assert.Equal(("sending", 1), (reopened.Status, requeued));
        var run = await RunAsync();
        Assert.Equal(("done", 0, 1, 2), (run.Status, run.Uncertain, run.Failed, run.Sent));
        // The first copy to lost@ was dropped after DATA (not accepted by this peer); the deliberate resend arrived.
        Assert.Equal(["fine@example.org", "lost@example.org"], _smtp.Accepted.Order());
    }

    [Fact]
    public async Task With_a_rate_limit_the_messages_go_out_no_faster_than_allowed()
    {
        await StartRunAsync(Enumerable.Range(1, 15).Select(i => $"r{i}@example.org").ToArray());
        var limited = _db.Engine(new SmtpTransport(new SmtpOptions { Host = "127.0.0.1", Port = _smtp.Port, Security = SmtpSecurity.None }), _clock,
            new DeliveryOptions { MaxPerSecond = 5, Lanes = 4 });
        await using var _ = limited;

        var watch = System.Diagnostics.Stopwatch.StartNew();
        await limited.DeliverBatchAsync();
        watch.Stop();

        // Five at once (one second's worth), then five a second: the last ten need two seconds.
        Assert.Equal(15, _smtp.Accepted.Count);
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(1.8), $"15 messages at 5/s took only {watch.Elapsed}");
    }
}
