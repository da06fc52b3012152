using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Delivery;

public sealed class SendApiTests
{
    private static Dictionary<string, string?> Sending(TestSmtpServer smtp)
    {
        var settings = ServiceProcess.SendingTo(smtp);
        settings["Newsletter__Delivery__BatchSize"] = "5";
        return settings;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> JsonOf(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

    [Fact]
    public async Task Two_service_processes_sharing_one_database_make_one_run_and_send_each_message_once()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        for (var i = 0; i < 30; i++)
            await db.Subscribers().AddActiveAsync(new NewSubscriber($"reader{i}@example.org", null, Cadence.Weekly, Language.Both));
        await using var smtp = new TestSmtpServer();
        await using var a = await ServiceProcess.StartAsync(db, Sending(smtp));
        await using var b = await ServiceProcess.StartAsync(db, Sending(smtp));
        using var adminA = a.Admin();
        using var adminB = b.Admin();

        var starts = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => (i % 2 == 0 ? adminA : adminB).PostAsync("/api/sends", Json("""{"cadence":"weekly"}"""))));
        Assert.All(starts, r => Assert.Equal(HttpStatusCode.Accepted, r.StatusCode));
        var ids = (await Task.WhenAll(starts.Select(JsonOf))).Select(j => j.GetProperty("id").GetInt64()).Distinct().ToList();
        var id = Assert.Single(ids);

        JsonElement run = default;
        for (var i = 0; i < 300; i++)
        {
            run = await JsonOf(await adminB.GetAsync($"/api/sends/{id}"));
            if (run.GetProperty("status").GetString() == "done") break;
            await Task.Delay(100);
        }

        Assert.Equal("done", run.GetProperty("status").GetString());
        Assert.Equal(30, run.GetProperty("total").GetInt32());
        Assert.Equal(30, run.GetProperty("sent").GetInt32());
        foreach (var field in new[] { "id", "kind", "status", "total", "queued", "sent", "retrying", "failed", "uncertain", "startedAt", "finishedAt" })
            Assert.True(run.TryGetProperty(field, out _), field);
        var recipients = smtp.Messages.SelectMany(m => m.Recipients).ToList();
        Assert.Equal(30, recipients.Count);
        Assert.Equal(30, recipients.Distinct().Count());
        Assert.Equal(1L, await db.ScalarAsync<long>("select count(*) from runs"));

        // Each process reports what it sent; together, every message once.
        var sentByMetrics = 0L;
        foreach (var service in new[] { a, b })
        {
            using var admin = service.Admin();
            var metrics = await admin.GetStringAsync("/metrics");
            Assert.Contains("# TYPE newsletter_messages_total counter", metrics);
            Assert.Contains("newsletter_queue_depth 0", metrics);
            Assert.Contains("newsletter_send_duration_seconds_count", metrics);
            var line = metrics.Split('\n').FirstOrDefault(l => l.StartsWith("newsletter_messages_total{kind=\"weekly\",result=\"sent\"}", StringComparison.Ordinal));
            if (line is not null) sentByMetrics += long.Parse(line.Split(' ')[1]);
        }
        Assert.Equal(30, sentByMetrics);
        var health = await JsonOf(await a.Http.GetAsync("/health"));
        Assert.Equal("healthy", health.GetProperty("checks").GetProperty("smtp").GetString());
    }

    [Fact]
    public async Task Health_reports_an_unreachable_smtp_server_with_503()
    {
        await using var db = await TestDatabase.CreateAsync();
        var down = new Dictionary<string, string?> { ["Newsletter__Smtp__Host"] = "127.0.0.1", ["Newsletter__Smtp__Port"] = "1", ["Newsletter__Smtp__Security"] = "None" };
        await using var service = await ServiceProcess.StartAsync(db, down, healthy: false);

        var response = await service.Http.GetAsync("/health");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var checks = (await JsonOf(response)).GetProperty("checks");
        Assert.Equal(("healthy", "unhealthy"), (checks.GetProperty("database").GetString(), checks.GetProperty("smtp").GetString()));
    }

    [Fact]
    public async Task Issues_subscribers_and_sends_work_through_the_api_and_bad_input_names_the_field()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var smtp = new TestSmtpServer();
        await using var service = await ServiceProcess.StartAsync(db, Sending(smtp));
        using var admin = service.Admin();

        // Issues
        var created = await admin.PostAsync("/api/issues", Json(SampleIssue.Json));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("/api/issues/top-ml-papers-2024-04-22", created.Headers.Location?.ToString());
        var draftSend = await admin.PostAsync("/api/sends", Json("""{"issue":"top-ml-papers-2024-04-22"}"""));
        Assert.Equal(HttpStatusCode.Conflict, draftSend.StatusCode);
        Assert.Equal("issue", (await JsonOf(draftSend)).GetProperty("field").GetString());
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/api/issues/top-ml-papers-2024-04-22/publish", null)).StatusCode);
        Assert.Equal("published", (await JsonOf(await admin.GetAsync("/api/issues")))[0].GetProperty("status").GetString());
        var unknownField = await admin.PostAsync("/api/issues", Json("""{"slug":"x","title":{"en":"T"},"items":[],"author":"me"}"""));
        Assert.Equal(HttpStatusCode.BadRequest, unknownField.StatusCode);
        Assert.Equal("author", (await JsonOf(unknownField)).GetProperty("field").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PostAsync("/api/issues", Json("{ broken"))).StatusCode);

        // Subscribers
        var added = await admin.PostAsync("/api/subscribers", Json("""{"email":"Jisoo@Example.org","name":"박지수","cadence":"daily","language":"both"}"""));
        Assert.Equal(HttpStatusCode.Created, added.StatusCode);
        var jisoo = await JsonOf(await admin.GetAsync("/api/subscribers/jisoo@example.org"));
        Assert.Equal(("daily", "both", "active"), (jisoo.GetProperty("cadence").GetString(), jisoo.GetProperty("language").GetString(), jisoo.GetProperty("status").GetString()));
        Assert.Equal(HttpStatusCode.Conflict, (await admin.PostAsync("/api/subscribers", Json("""{"email":"jisoo@example.org"}"""))).StatusCode);
        var patched = await admin.PatchAsync("/api/subscribers/jisoo@example.org", Json("""{"cadence":"weekly"}"""));
        Assert.Equal("weekly", (await JsonOf(patched)).GetProperty("cadence").GetString());
        foreach (var (body, field) in new[] { ("""{"email":"not-an-address"}""", "email"), ("""{"email":"a@example.org","cadence":"monthly"}""", "cadence"), ("""{"email":"a@example.org","language":"fr"}""", "language"), ("""{"email":"a@example.org","age":3}""", "age") })
        {
            var bad = await admin.PostAsync("/api/subscribers", Json(body));
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Equal(field, (await JsonOf(bad)).GetProperty("field").GetString());
        }
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/subscribers/nobody@example.org")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PatchAsync("/api/subscribers/nobody@example.org", Json("""{"status":"active"}"""))).StatusCode);

        // Sends: bad input creates no run.
        foreach (var (body, status, field) in new[]
        {
            ("""{"cadence":"monthly"}""", HttpStatusCode.BadRequest, "cadence"),
            ("""{"issue":"no-such-issue"}""", HttpStatusCode.NotFound, "issue"),
            ("""{}""", HttpStatusCode.BadRequest, "cadence"),
            ("""{"cadence":"daily","issue":"x"}""", HttpStatusCode.BadRequest, "cadence"),
            ("""{"cadence":"daily","when":"now"}""", HttpStatusCode.BadRequest, "when"),
        })
        {
            var bad = await admin.PostAsync("/api/sends", Json(body));
            Assert.Equal(status, bad.StatusCode);
            Assert.Equal(field, (await JsonOf(bad)).GetProperty("field").GetString());
        }
        Assert.Equal(0L, await db.ScalarAsync<long>("select count(*) from runs"));
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/sends/999")).StatusCode);

        // A broadcast goes out and can be watched.
        var broadcast = await JsonOf(await admin.PostAsync("/api/sends", Json("""{"issue":"top-ml-papers-2024-04-22"}""")));
        var id = broadcast.GetProperty("id").GetInt64();
        await ServiceProcess.WaitForRunAsync(admin, id);
        Assert.Equal("jisoo@example.org", Assert.Single(smtp.Messages).Recipients.Single(), ignoreCase: true);
        Assert.Equal(HttpStatusCode.Conflict, (await admin.PostAsync($"/api/sends/{id}/pause", null)).StatusCode);
        Assert.Single((await JsonOf(await admin.GetAsync("/api/sends"))).EnumerateArray());
    }

    [Fact]
    public async Task Send_verbs_reject_bad_input_naming_the_field_and_create_no_run()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.Issues().ImportAsync(SampleIssue.Document with { Slug = "a-draft" }, publish: false);
        var dir = NewsletterProcess.TempDirectory();

        var monthly = await NewsletterProcess.RunAsync(db, dir, "send", "monthly");
        var unknown = await NewsletterProcess.RunAsync(db, dir, "send", "issue", "no-such-issue");
        var draft = await NewsletterProcess.RunAsync(db, dir, "send", "issue", "a-draft");
        var badRun = await NewsletterProcess.RunAsync(db, dir, "send", "pause", "42");
        var badTo = await NewsletterProcess.RunAsync(db, dir, "send", "test", "a-draft", "--to", "nobody");

        Assert.NotEqual(0, monthly.ExitCode);
        Assert.Contains("monthly", monthly.Error);
        Assert.NotEqual(0, unknown.ExitCode);
        Assert.Contains("issue: no issue is called 'no-such-issue'", unknown.Error);
        Assert.NotEqual(0, draft.ExitCode);
        Assert.Contains("issue: issue 'a-draft' is a draft", draft.Error);
        Assert.Contains("run: no run has id 42", badRun.Error);
        Assert.Contains("to: 'nobody' is not an email address", badTo.Error);
        Assert.Equal(0L, await db.ScalarAsync<long>("select count(*) from runs"));
    }

    [Fact]
    public async Task Send_weekly_with_deliver_works_without_a_running_service()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        await db.Subscribers().AddActiveAsync(new NewSubscriber("reader@example.org", "Reader", Cadence.Weekly, Language.En));
        var dir = NewsletterProcess.TempDirectory();

        var result = await NewsletterProcess.RunAsync(db, dir, "send", "weekly", "--deliver");
        var again = await NewsletterProcess.RunAsync(db, dir, "send", "weekly", "--deliver");

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.Contains("done, total 1, queued 0, sent 1", result.Output);
        Assert.Contains("total 0", again.Output);
        Assert.Single(Directory.GetFiles(Path.Combine(dir, "outbox"), "*.eml"));
    }
}
