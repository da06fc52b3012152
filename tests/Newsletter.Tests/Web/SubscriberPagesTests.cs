using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Xml.Linq;
using Dapper;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Web;

/// <summary>The subscriber pages over HTTP against the real <c>newsletter run</c> process, PostgreSQL and an SMTP server.</summary>
public sealed class SubscriberPagesTests : DatabaseAndSmtpTest
{
    private static readonly LinkSigner Signer = new(TestMail.Secret);

    private Task<ServiceProcess> StartAsync(Dictionary<string, string?>? extra = null)
    {
        var settings = ServiceProcess.SendingTo(_smtp);
        settings["Newsletter__Subscribe__RequestsPerMinute"] = "1000";
        foreach (var (k, v) in extra ?? []) settings[k] = v;
        return ServiceProcess.StartAsync(_db, settings);
    }

    private static string Token(LinkPurpose purpose, Guid subscriber) => Signer.Create(purpose, subscriber, DateTimeOffset.UtcNow);

    private async Task<string> StatusOf(string email) =>
        await _db.ScalarAsync<string>($"select status from subscribers where email = '{email}'");

    private async Task<List<string>> MailsTo(string email, int expected, TimeSpan wait)
    {
        var deadline = DateTime.UtcNow + wait;
        while (DateTime.UtcNow < deadline && _smtp.Messages.Count(m => m.Recipients.Contains(email)) < expected) await Task.Delay(100);
        return _smtp.Messages.Where(m => m.Recipients.Contains(email)).Select(m => m.Message.Subject ?? "").ToList();
    }

    private static (string, string)[] SignUp(string email, string cadence = "weekly", string language = "en", string name = "") =>
        [("email", email), ("name", name), ("cadence", cadence), ("language", language), ("website", "")];

    [Fact]
    public async Task A_reader_turns_click_counting_off_and_on_on_the_preferences_page_and_the_page_says_what_is_kept()
    {
        var subscriber = await _db.Subscribers().AddActiveAsync(new NewSubscriber("reader@example.org", null, Cadence.Weekly, Language.En));
        var preferences = Token(LinkPurpose.Preferences, subscriber.PublicId);
        await using (var service = await StartAsync())
        {
            using var client = new PageClient(service.BaseAddress);
            var (_, form) = await client.GetAsync($"/preferences/{preferences}?lang=en");
            Assert.Contains("Count my clicks on links", form);
            Assert.Contains("never who", form);
            Assert.Contains("name=\"click_tracking\" value=\"on\" checked", form);

            // Unticked: the box sends nothing, the form says it was shown.
            var (status, saved) = await client.PostAsync($"/preferences/{preferences}", [("action", "save"), ("cadence", "weekly"), ("language", "en"), ("click_tracking_shown", "1")]);
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.DoesNotContain("name=\"click_tracking\" value=\"on\" checked", saved);
            Assert.False(await _db.ScalarAsync<bool>("select click_tracking from subscribers where email = 'reader@example.org'"));
            // A form without the box (an older page) leaves the choice as it is.
            await client.PostAsync($"/preferences/{preferences}", [("action", "save"), ("cadence", "daily"), ("language", "en")]);
            Assert.False(await _db.ScalarAsync<bool>("select click_tracking from subscribers where email = 'reader@example.org'"));
            await client.PostAsync($"/preferences/{preferences}", [("action", "save"), ("cadence", "daily"), ("language", "en"), ("click_tracking_shown", "1"), ("click_tracking", "on")]);
            Assert.True(await _db.ScalarAsync<bool>("select click_tracking from subscribers where email = 'reader@example.org'"));
            var events = await _db.Subscriptions().HistoryAsync("reader@example.org");
            Assert.Equal(["off", "on"], events!.Where(e => e.Event == "click_tracking_changed").Select(e => e.Detail));
        }

        // Per-subscriber mode says that who clicked is recorded; with tracking off there is no box at all.
        await using (var service = await StartAsync(new() { ["Newsletter__Tracking__Clicks"] = "per-subscriber" }))
        {
            using var client = new PageClient(service.BaseAddress);
            Assert.Contains("Which reader opened which paper is recorded.", (await client.GetAsync($"/preferences/{preferences}?lang=en")).Html);
        }
        await using (var service = await StartAsync(new() { ["Newsletter__Tracking__Clicks"] = "off" }))
        {
            using var client = new PageClient(service.BaseAddress);
            Assert.DoesNotContain("click_tracking", (await client.GetAsync($"/preferences/{preferences}?lang=en")).Html);
        }
    }

    [Fact]
    public async Task Signing_up_answers_alike_whatever_the_address_and_mails_only_new_and_pending_ones_once_per_interval()
    {
        await _db.Subscribers().AddActiveAsync(new NewSubscriber("active@example.org", null, Cadence.Weekly, Language.En));
        await _db.Subscribers().AddActiveAsync(new NewSubscriber("left@example.org", null, Cadence.Weekly, Language.En));
        await _db.Subscribers().UpdateAsync("left@example.org", null, null, SubscriberStatus.Unsubscribed);
        await using var service = await StartAsync();
        using var client = new PageClient(service.BaseAddress);

        var answers = new List<(HttpStatusCode, string)>();
        foreach (var email in new[] { "new@example.org", "new@example.org", "active@example.org", "left@example.org" })
        {
            await client.GetAsync("/subscribe?lang=en");
            answers.Add(await client.PostAsync("/subscribe?lang=en", SignUp(email)));
        }

        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.Item1));
        Assert.Single(answers.Select(a => a.Item2).Distinct()); // byte for byte the same page
        Assert.Equal("Check your inbox", PageClient.Heading(answers[0].Item2));
        Assert.Single(await MailsTo("new@example.org", 1, TimeSpan.FromSeconds(10)));
        Assert.Single(await MailsTo("left@example.org", 1, TimeSpan.FromSeconds(10)));
        await Task.Delay(1000);
        Assert.Single(await MailsTo("new@example.org", 2, TimeSpan.Zero)); // the second sign-up was within the interval
        Assert.Empty(await MailsTo("active@example.org", 0, TimeSpan.Zero));
        Assert.Equal("pending", await StatusOf("new@example.org"));
        Assert.Equal("active", await StatusOf("active@example.org"));

        // A bot filling the honeypot gets the same page, and nothing is stored.
        await client.GetAsync("/subscribe");
        var bot = await client.PostAsync("/subscribe?lang=en", [("email", "bot@example.org"), ("name", ""), ("cadence", "weekly"), ("language", "en"), ("website", "http://spam.example")]);
        Assert.Equal(HttpStatusCode.OK, bot.Status);
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from subscribers where email = 'bot@example.org'"));

        // The confirmation link works once; replaying it changes nothing and still answers 200.
        var mail = _smtp.Messages.First(m => m.Recipients.Contains("new@example.org")).Message;
        var link = new Uri(System.Text.RegularExpressions.Regex.Match(mail.TextBody ?? "", @"http\S+/confirm/\S+").Value);
        var page = await client.GetAsync(link.PathAndQuery);
        Assert.Equal("pending", await StatusOf("new@example.org")); // GET never changes state
        var confirmed = await client.PostAsync(link.PathAndQuery, []);
        Assert.Equal(HttpStatusCode.OK, confirmed.Status);
        Assert.Equal("Your subscription is confirmed", PageClient.Heading(confirmed.Html));
        Assert.Equal("active", await StatusOf("new@example.org"));
        await client.GetAsync(link.PathAndQuery);
        var replay = await client.PostAsync(link.PathAndQuery, []);
        Assert.Equal(HttpStatusCode.OK, replay.Status);
        using var admin = service.Admin();
        var history = JsonDocument.Parse(await admin.GetStringAsync("/api/subscribers/new@example.org/history")).RootElement;
        Assert.Equal(["subscribed", "confirmed"], history.EnumerateArray().Select(e => e.GetProperty("event").GetString()));
        Assert.All(history.EnumerateArray(), e => Assert.Equal("page", e.GetProperty("source").GetString()));
        Assert.Equal("127.0.0.1", history[0].GetProperty("clientAddress").GetString());
    }

    [Fact]
    public async Task Bad_input_gets_a_4xx_page_naming_the_problem_and_changes_nothing()
    {
        var subscriber = await _db.Subscribers().AddActiveAsync(new NewSubscriber("reader@example.org", null, Cadence.Daily, Language.En));
        await using var service = await StartAsync();
        using var client = new PageClient(service.BaseAddress);

        async Task<(HttpStatusCode Status, string Html)> Post(params (string, string)[] fields)
        {
            await client.GetAsync("/subscribe?lang=en");
            return await client.PostAsync("/subscribe?lang=en", fields);
        }

        var bad = new (string Expect, (HttpStatusCode, string Html) Answer)[]
        {
            ("Email address", await Post(SignUp("not-an-address"))),
            ("Email address", await Post(SignUp(new string('a', 250) + "@example.org"))),
            ("Name", await Post(SignUp("x@example.org", name: new string('n', 101)))),
            ("How often", await Post(SignUp("x@example.org", cadence: "hourly"))),
            ("Language", await Post(SignUp("x@example.org", language: "fr"))),
            ("is not a field of this form", await Post([.. SignUp("x@example.org"), ("admin", "true")])),
        };
        foreach (var (expect, (status, html)) in bad)
        {
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Contains(expect, PageClient.Text(html));
        }

        // No antiforgery token, or a token without its cookie.
        var noToken = await client.PostAsync("/subscribe?lang=en", SignUp("x@example.org"), withToken: false);
        Assert.Equal(HttpStatusCode.BadRequest, noToken.Status);
        Assert.Contains("expired", PageClient.Text(noToken.Html));
        using var stranger = new PageClient(service.BaseAddress);
        var foreign = await stranger.PostAsync("/subscribe", [.. SignUp("x@example.org"), ("__af", client.Token)], withToken: false);
        Assert.Equal(HttpStatusCode.BadRequest, foreign.Status);

        // An oversized body, a broken multipart body, JSON instead of a form.
        await client.GetAsync("/subscribe");
        var huge = await client.PostAsync("/subscribe?lang=en", SignUp("x@example.org", name: new string('n', 40_000)));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, huge.Status);
        var broken = new HttpRequestMessage(HttpMethod.Post, "/subscribe") { Content = new StringContent("--b\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nx@exa", Encoding.UTF8) };
        broken.Content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse("multipart/form-data; boundary=b");
        Assert.Equal(HttpStatusCode.BadRequest, (await client.SendAsync(broken)).Status);
        var json = new HttpRequestMessage(HttpMethod.Post, "/subscribe") { Content = JsonContent.Create(new { email = "x@example.org" }) };
        Assert.Equal(HttpStatusCode.BadRequest, (await client.SendAsync(json)).Status);
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from subscribers where email <> 'reader@example.org'"));

        // Forged, truncated, cross-purpose and expired tokens: a 404 page, never a stack trace.
        var unsubscribe = Token(LinkPurpose.Unsubscribe, subscriber.PublicId);
        var preferences = Token(LinkPurpose.Preferences, subscriber.PublicId);
        var expired = Signer.Create(LinkPurpose.Confirm, subscriber.PublicId, DateTimeOffset.UtcNow.AddDays(-8));
        var forged = unsubscribe[..^2] + (unsubscribe[^2] == 'A' ? "BA" : "AA");
        foreach (var path in new[]
        {
            $"/unsubscribe/{forged}", $"/unsubscribe/{unsubscribe[..20]}", $"/unsubscribe/{preferences}", $"/preferences/{unsubscribe}",
            $"/confirm/{expired}", $"/confirm/{preferences}", "/unsubscribe/%E2%98%83", $"/preferences/{new string('x', 500)}",
        })
        {
            var (status, html) = await client.GetAsync(path, acceptLanguage: "en");
            Assert.Equal(HttpStatusCode.NotFound, status);
            Assert.Contains("not valid", PageClient.Text(html));
            using var post = new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")]) };
            Assert.Equal(HttpStatusCode.NotFound, (await client.SendAsync(post)).Status);
        }
        Assert.Equal("active", await StatusOf("reader@example.org"));

        // Preferences: an unknown language or cadence is refused and nothing changes.
        await client.GetAsync($"/preferences/{preferences}");
        var language = await client.PostAsync($"/preferences/{preferences}", [("action", "save"), ("cadence", "weekly"), ("language", "klingon"), ("name", "")]);
        Assert.Equal(HttpStatusCode.BadRequest, language.Status);
        Assert.Contains("Language", PageClient.Text(language.Html));
        var action = await client.PostAsync($"/preferences/{preferences}", [("action", "delete-everything")]);
        Assert.Equal(HttpStatusCode.BadRequest, action.Status);
        Assert.Equal("daily", await _db.ScalarAsync<string>("select cadence from subscribers where email = 'reader@example.org'"));
    }

    [Fact]
    public async Task One_click_unsubscribe_needs_no_cookie_or_token_accepts_every_body_is_idempotent_and_stops_what_is_queued()
    {
        await _db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        var readers = new List<Subscriber>();
        for (var i = 0; i < 3; i++)
            readers.Add(await _db.Subscribers().AddActiveAsync(new NewSubscriber($"reader{i}@example.org", null, Cadence.Weekly, Language.En)));
        // Queued, and held (paused) until the unsubscribes are in.
        var run = (await _db.Ledger().StartDigestAsync(Cadence.Weekly, null)).Run;
        await _db.Ledger().PauseAsync(run.Id, "held by the test");
        await using var service = await StartAsync();

        var bodies = new HttpContent?[]
        {
            new FormUrlEncodedContent([new("List-Unsubscribe", "One-Click")]),
            new MultipartFormDataContent { { new StringContent("One-Click"), "List-Unsubscribe" } },
            null,
        };
        using var raw = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = service.BaseAddress };
        raw.DefaultRequestHeaders.UserAgent.ParseAdd("Mail-Provider-Unsubscriber/1.0");
        for (var i = 0; i < 3; i++)
        {
            var url = $"/unsubscribe/{Token(LinkPurpose.Unsubscribe, readers[i].PublicId)}";
            for (var time = 0; time < 2; time++)
            {
                using var response = await raw.PostAsync(url, bodies[i] is { } b && time == 0 ? b : new ByteArrayContent([]));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Assert.Null(response.Headers.Location);
                Assert.Equal("You are unsubscribed", PageClient.Heading(await response.Content.ReadAsStringAsync()));
            }
            Assert.Equal("unsubscribed", await StatusOf(readers[i].Email));
        }

        using var admin = service.Admin();
        (await admin.PostAsync($"/api/sends/{run.Id}/resume", null)).EnsureSuccessStatusCode();
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Empty(_smtp.Messages);
        await using var connection = await _db.DataSource.OpenConnectionAsync();
        Assert.Equal(["cancelled"], (await connection.QueryAsync<string>("select distinct status from deliveries")).ToList());
        Assert.Equal("done", (await _db.Ledger().GetAsync(run.Id))!.Status);
        var history = JsonDocument.Parse(await admin.GetStringAsync("/api/subscribers/reader0@example.org/history")).RootElement;
        var last = history.EnumerateArray().Last();
        Assert.Equal(("unsubscribed", "one-click", "Mail-Provider-Unsubscriber/1.0"),
            (last.GetProperty("event").GetString(), last.GetProperty("source").GetString(), last.GetProperty("userAgent").GetString()));
        Assert.Single(history.EnumerateArray(), e => e.GetProperty("event").GetString() == "unsubscribed"); // the second click changed nothing
    }

    [Fact]
    public async Task Too_many_form_posts_from_one_address_get_a_readable_429()
    {
        await using var service = await StartAsync(new() { ["Newsletter__Subscribe__RequestsPerMinute"] = "3" });
        using var client = new PageClient(service.BaseAddress);
        var statuses = new List<HttpStatusCode>();
        string last = "";
        for (var i = 0; i < 5; i++)
        {
            await client.GetAsync("/subscribe?lang=en");
            (var status, last) = await client.PostAsync("/subscribe?lang=en", SignUp($"r{i}@example.org"));
            statuses.Add(status);
        }
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], statuses);
        Assert.Equal("Too many requests", PageClient.Heading(last));
        Assert.Equal(3L, await _db.ScalarAsync<long>("select count(*) from subscribers"));
        // Pages (and one-click) are not limited.
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/subscribe")).Status);
    }

    [Fact]
    public async Task The_archive_shows_published_issues_in_the_visitors_language_and_the_feed_lists_them()
    {
        var published = await _db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        await _db.Issues().ImportAsync(SampleIssue.Document with { Slug = "next-week-draft" }, publish: false);
        await using var service = await StartAsync();
        using var client = new PageClient(service.BaseAddress);

        var (status, korean) = await client.GetAsync("/issues", acceptLanguage: "ko-KR,ko;q=0.9,en;q=0.5");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("지난 글", PageClient.Heading(korean));
        Assert.Contains(published.Title.Ko!, PageClient.Text(korean));
        Assert.DoesNotContain("next-week-draft", korean);
        var english = (await client.GetAsync("/issues", acceptLanguage: "en-US,en;q=0.9")).Html;
        Assert.Contains(published.Title.En!, PageClient.Text(english));
        Assert.Contains("lang=\"en\"", english);

        var issue = await client.GetAsync($"/issues/{published.Slug}?lang=en");
        Assert.Equal(HttpStatusCode.OK, issue.Status);
        Assert.Equal(published.Title.En, PageClient.Heading(issue.Html));
        Assert.Contains(published.Items[0].Title.En!, PageClient.Text(issue.Html));
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/issues/next-week-draft")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/issues/no-such-issue")).Status);

        using var feedResponse = await service.Http.GetAsync("/feed.xml");
        Assert.Equal("application/atom+xml", feedResponse.Content.Headers.ContentType?.MediaType);
        var feed = XDocument.Parse(await feedResponse.Content.ReadAsStringAsync());
        XNamespace atom = "http://www.w3.org/2005/Atom";
        var entry = Assert.Single(feed.Root!.Elements(atom + "entry"));
        Assert.Equal($"{service.BaseAddress.ToString().TrimEnd('/')}/issues/{published.Slug}", entry.Element(atom + "link")!.Attribute("href")!.Value);
        Assert.NotNull(feed.Root.Element(atom + "updated"));
    }
}
