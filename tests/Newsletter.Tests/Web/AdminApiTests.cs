using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Web;

/// <summary>The admin API's subscriber, issue and run routes against the real service, PostgreSQL and SMTP servers.</summary>
public sealed class AdminApiTests
{
    private static StringContent Csv(string csv) => new(csv, Encoding.UTF8, "text/csv");

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> JsonOf(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

    [Fact]
    public async Task Import_export_erase_and_keyset_paging_over_http()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var service = await ServiceProcess.StartAsync(db);
        using var admin = service.Admin();

        var report = await JsonOf(await admin.PostAsync("/api/subscribers/import", Csv("email,name,cadence\na@example.org,A,daily\nbad,,\nb@example.org,,\nc@example.org,,\n")));
        Assert.Equal(3, report.GetProperty("inserted").GetInt32());
        var problem = Assert.Single(report.GetProperty("problems").EnumerateArray());
        Assert.Equal((3, "email"), (problem.GetProperty("line").GetInt32(), problem.GetProperty("field").GetString()));

        // A file that cannot be imported: 400 naming the problem, nothing stored.
        using (var broken = await admin.PostAsync("/api/subscribers/import", Csv("email,name\nd@example.org,\"open\n")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, broken.StatusCode);
            Assert.Equal("csv", (await JsonOf(broken)).GetProperty("field").GetString());
        }
        using (var notCsv = await admin.PostAsync("/api/subscribers/import", Json("""{"email":"d@example.org"}""")))
            Assert.Equal(HttpStatusCode.BadRequest, notCsv.StatusCode);
        Assert.Equal(3L, await db.ScalarAsync<long>("select count(*) from subscribers"));

        // Keyset paging: two pages of two, then the end.
        var first = await JsonOf(await admin.GetAsync("/api/subscribers?limit=2"));
        Assert.Equal(["a@example.org", "b@example.org"], first.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("email").GetString()));
        var next = first.GetProperty("next").GetString();
        var second = await JsonOf(await admin.GetAsync($"/api/subscribers?limit=2&after={next}"));
        Assert.Equal(["c@example.org"], second.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("email").GetString()));
        Assert.Equal(JsonValueKind.Null, second.GetProperty("next").ValueKind);
        var daily = await JsonOf(await admin.GetAsync("/api/subscribers?cadence=daily&q=A"));
        Assert.Single(daily.GetProperty("items").EnumerateArray());
        using (var badLimit = await admin.GetAsync("/api/subscribers?limit=100000"))
            Assert.Equal("limit", (await JsonOf(badLimit)).GetProperty("field").GetString());

        // Export streams CSV that imports back.
        using var export = await admin.GetAsync("/api/subscribers/export");
        Assert.Equal("text/csv", export.Content.Headers.ContentType?.MediaType);
        var csv = await export.Content.ReadAsStringAsync();
        Assert.Equal(4, csv.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.StartsWith("a@example.org,A,daily,ko,active,", csv.Split("\r\n")[1]);

        // Erase, then a re-import cannot bring the address back.
        using (var erase = await admin.DeleteAsync("/api/subscribers/a@example.org"))
            Assert.Equal(HttpStatusCode.NoContent, erase.StatusCode);
        using (var gone = await admin.GetAsync("/api/subscribers/a@example.org"))
            Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        var again = await JsonOf(await admin.PostAsync("/api/subscribers/import", Csv(csv)));
        Assert.Equal(0, again.GetProperty("inserted").GetInt32());
        Assert.Contains("suppressed", again.GetProperty("problems")[0].GetProperty("reason").GetString());
        using (var addBack = await admin.PostAsync("/api/subscribers", Json("""{"email":"A@example.org"}""")))
            Assert.Equal(HttpStatusCode.Conflict, addBack.StatusCode);
    }

    [Fact]
    public async Task Drafts_can_be_replaced_and_deleted_published_issues_only_corrected()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var service = await ServiceProcess.StartAsync(db);
        using var admin = service.Admin();
        var json = await File.ReadAllTextAsync(Repository.PathOf("db/samples/top-ml-papers-2024-04-22.json"));
        var slug = SampleIssue.Document.Slug;

        using (var created = await admin.PutAsync($"/api/issues/{slug}", Json(json)))
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        using (var wrongSlug = await admin.PutAsync("/api/issues/another-slug", Json(json)))
            Assert.Equal("slug", (await JsonOf(wrongSlug)).GetProperty("field").GetString());
        using (var unknownField = await admin.PutAsync($"/api/issues/{slug}", Json(json.Replace("\"slug\"", "\"surprise\": 1, \"slug\"", StringComparison.Ordinal))))
            Assert.Equal(HttpStatusCode.BadRequest, unknownField.StatusCode);
        var edited = json.Replace(SampleIssue.Document.Title.En!, "Edited title", StringComparison.Ordinal);
        using (var replaced = await admin.PutAsync($"/api/issues/{slug}", Json(edited)))
            Assert.Equal("Edited title", (await JsonOf(replaced)).GetProperty("title").GetProperty("en").GetString());

        await admin.PostAsync($"/api/issues/{slug}/publish", null);
        using (var immutable = await admin.PutAsync($"/api/issues/{slug}", Json(json)))
            Assert.Equal(HttpStatusCode.Conflict, immutable.StatusCode);
        using (var delete = await admin.DeleteAsync($"/api/issues/{slug}"))
            Assert.Equal(HttpStatusCode.Conflict, delete.StatusCode);
        using (var corrected = await admin.PutAsync($"/api/issues/{slug}?correction=true", Json(json)))
            Assert.Equal(HttpStatusCode.OK, corrected.StatusCode);
        var issue = await JsonOf(await admin.GetAsync($"/api/issues/{slug}"));
        Assert.Equal(("published", SampleIssue.Document.Title.En), (issue.GetProperty("status").GetString(), issue.GetProperty("title").GetProperty("en").GetString()));
        Assert.Equal(10, issue.GetProperty("items").GetArrayLength());
        Assert.True(await db.ScalarAsync<bool>($"select corrected_at is not null from issues where slug = '{slug}'"));

        using (var draft = await admin.PutAsync("/api/issues/a-draft", Json(json.Replace(slug, "a-draft", StringComparison.Ordinal))))
            Assert.Equal(HttpStatusCode.Created, draft.StatusCode);
        using (var deleted = await admin.DeleteAsync("/api/issues/a-draft"))
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        using (var missing = await admin.GetAsync("/api/issues/a-draft"))
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task A_run_shows_its_pace_its_failed_deliveries_with_replies_who_got_an_issue_and_resends_only_the_failures()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var smtp = new ScriptedSmtpServer { RcptReply = (rcpt, attempt) => rcpt.StartsWith("full", StringComparison.Ordinal) && attempt == 1 ? "552 5.2.2 mailbox full" : "250 2.1.5 OK" };
        var issue = await db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        foreach (var email in new[] { "one@example.org", "two@example.org", "full@example.org" })
            await db.Subscribers().AddActiveAsync(new NewSubscriber(email, null, Cadence.Weekly, Language.En));
        await using var service = await ServiceProcess.StartAsync(db, new Dictionary<string, string?>
        {
            ["Newsletter__Smtp__Host"] = "127.0.0.1", ["Newsletter__Smtp__Port"] = smtp.Port.ToString(), ["Newsletter__Smtp__Security"] = "None",
            ["Newsletter__Delivery__PollInterval"] = "00:00:00.200", ["Newsletter__Schedule__MaxLateness"] = "00:00:00",
        });
        using var admin = service.Admin();

        var id = (await JsonOf(await admin.PostAsync("/api/sends", Json($$"""{"issue":"{{issue.Slug}}"}""")))).GetProperty("id").GetInt64();
        JsonElement run = default;
        for (var i = 0; i < 600 && (run.ValueKind == JsonValueKind.Undefined || run.GetProperty("status").GetString() != "done"); i++)
        {
            await Task.Delay(100);
            run = await JsonOf(await admin.GetAsync($"/api/sends/{id}"));
        }
        Assert.Equal(("done", 2, 1), (run.GetProperty("status").GetString(), run.GetProperty("sent").GetInt32(), run.GetProperty("failed").GetInt32()));
        Assert.True(run.GetProperty("messagesPerSecond").GetDouble() > 0);
        Assert.Equal(0, run.GetProperty("remaining").GetInt32());

        var failed = await JsonOf(await admin.GetAsync($"/api/sends/{id}/deliveries?status=failed"));
        var row = Assert.Single(failed.GetProperty("items").EnumerateArray());
        Assert.Equal("full@example.org", row.GetProperty("email").GetString());
        Assert.Contains("552 5.2.2 mailbox full", row.GetProperty("lastError").GetString());
        using (var badStatus = await admin.GetAsync($"/api/sends/{id}/deliveries?status=lost"))
            Assert.Equal("status", (await JsonOf(badStatus)).GetProperty("field").GetString());

        var who = await JsonOf(await admin.GetAsync($"/api/issues/{issue.Slug}/deliveries?email=TWO@example.org"));
        var got = Assert.Single(who.GetProperty("items").EnumerateArray());
        Assert.Equal(("two@example.org", "sent"), (got.GetProperty("email").GetString(), got.GetProperty("status").GetString()));
        Assert.False(string.IsNullOrEmpty(got.GetProperty("messageId").GetString()));

        var resend = await JsonOf(await admin.PostAsync($"/api/sends/{id}/resend", Json("""{"failed":true}""")));
        Assert.Equal(1, resend.GetProperty("requeued").GetInt32());
        for (var i = 0; i < 600 && !smtp.Accepted.Contains("full@example.org"); i++) await Task.Delay(100);
        Assert.Equal(["full@example.org", "one@example.org", "two@example.org"], smtp.Accepted.Order());
        using (var badFlag = await admin.PostAsync($"/api/sends/{id}/resend", Json("""{"failed":"yes"}""")))
            Assert.Equal("failed", (await JsonOf(badFlag)).GetProperty("field").GetString());
    }

    [Fact]
    public async Task Every_route_of_the_openapi_document_refuses_a_missing_or_wrong_key_and_guessing_is_rate_limited()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var service = await ServiceProcess.StartAsync(db);
        var document = await JsonOf(await service.Http.GetAsync("/openapi/v1.json"));
        var operations = document.GetProperty("paths").EnumerateObject()
            .Where(p => p.Name.StartsWith("/api/", StringComparison.Ordinal))
            .SelectMany(p => p.Value.EnumerateObject().Select(o => (Method: new HttpMethod(o.Name.ToUpperInvariant()), Path: p.Name)))
            .ToList();
        Assert.True(operations.Count >= 24, $"only {operations.Count} operations described");
        foreach (var expected in new[] { "/api/subscribers/import", "/api/subscribers/export", "/api/issues/{slug}/deliveries", "/api/sends/{id}/deliveries", "/api/subscribers/{email}/history" })
            Assert.Contains(operations, o => o.Path == expected);

        using var wrong = new HttpClient { BaseAddress = service.BaseAddress };
        wrong.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "not-the-admin-key-at-all");
        var refused = 0;
        var wrongRefused = 0;
        foreach (var (method, template) in operations)
        {
            var path = template.Replace("{slug}", "x").Replace("{email}", "a@example.org").Replace("{id}", "1");
            foreach (var client in new[] { service.Http, wrong })
            {
                using var request = new HttpRequestMessage(method, path) { Content = method == HttpMethod.Get ? null : Json("{}") };
                using var response = await client.SendAsync(request);
                if (response.StatusCode == HttpStatusCode.TooManyRequests) continue; // past the limit: refused all the same
                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path}: {response.StatusCode}");
                Assert.DoesNotContain("key", await response.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
                refused++;
                if (client == wrong) wrongRefused++;
            }
        }
        Assert.Equal(20, wrongRefused); // 20 wrong keys a minute from one address, then 429 (a request without a key does not count)
        Assert.True(refused > wrongRefused);

        // Even the right key waits until the minute is over.
        using var admin = service.Admin();
        using var blocked = await admin.GetAsync("/api/issues");
        Assert.Equal(HttpStatusCode.TooManyRequests, blocked.StatusCode);
        Assert.NotNull(blocked.Headers.RetryAfter);
    }

    [Fact]
    public async Task The_openapi_document_describes_every_request_and_response_field_the_service_uses()
    {
        await using var db = await TestDatabase.CreateAsync();
        var issue = await db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        await db.Subscribers().AddActiveAsync(new NewSubscriber("reader@example.org", "Reader", Cadence.Daily, Language.En));
        await using var service = await ServiceProcess.StartAsync(db);
        using var admin = service.Admin();
        var document = await JsonOf(await service.Http.GetAsync("/openapi/v1.json"));
        var schemas = document.GetProperty("components").GetProperty("schemas");
        Assert.Equal("bearer", document.GetProperty("components").GetProperty("securitySchemes").GetProperty("admin-key").GetProperty("scheme").GetString());
        Assert.True(document.GetProperty("security")[0].TryGetProperty("admin-key", out _));

        JsonElement Resolve(JsonElement schema)
        {
            if (schema.TryGetProperty("$ref", out var reference)) return Resolve(schemas.GetProperty(reference.GetString()!["#/components/schemas/".Length..]));
            if (schema.TryGetProperty("items", out var items)) return Resolve(items);
            foreach (var combinator in new[] { "oneOf", "anyOf", "allOf" })
                if (schema.TryGetProperty(combinator, out var options))
                    return Resolve(options.EnumerateArray().First(o => !(o.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == "null")));
            return schema;
        }
        HashSet<string> Fields(JsonElement schema) =>
            Resolve(schema).TryGetProperty("properties", out var properties) ? properties.EnumerateObject().Select(p => p.Name).ToHashSet() : [];
        JsonElement Operation(string method, string path) => document.GetProperty("paths").GetProperty(path).GetProperty(method);
        JsonElement Content(JsonElement holder, string type) => holder.GetProperty("content").GetProperty(type).GetProperty("schema");
        static void SameFields(IEnumerable<string> expected, IEnumerable<string> actual, string? where = null) =>
            Assert.True(expected.ToHashSet().SetEquals(actual), $"{where}: expected {string.Join(", ", expected.Order())}, got {string.Join(", ", actual.Order())}");
        HashSet<string> Required(JsonElement schema) =>
            Resolve(schema).TryGetProperty("required", out var required) ? required.EnumerateArray().Select(r => r.GetString()!).ToHashSet() : [];
        HashSet<string> RequestFields(string method, string path) => Fields(Content(Operation(method, path).GetProperty("requestBody"), "application/json"));
        JsonElement Success(string method, string path) =>
            Operation(method, path).GetProperty("responses").EnumerateObject().First(r => r.Name.StartsWith('2')).Value;

        // Every operation says what it answers, with its fields; every body it reads is described.
        var bodiless = new[] { "/publish", "/pause", "/resume", "/cancel" };
        foreach (var path in document.GetProperty("paths").EnumerateObject().Where(p => p.Name.StartsWith("/api/", StringComparison.Ordinal)))
            foreach (var operation in path.Value.EnumerateObject())
            {
                var where = $"{operation.Name} {path.Name}";
                var (status, success) = operation.Value.GetProperty("responses").EnumerateObject().Select(r => (r.Name, r.Value)).First(r => r.Name.StartsWith('2'));
                if (status != "204")
                {
                    Assert.True(success.TryGetProperty("content", out var content), $"{where}: the {status} response has no content described");
                    if (content.TryGetProperty("application/json", out var json))
                        Assert.True(Fields(json.GetProperty("schema")).Count > 0, $"{where}: the {status} response's fields are not described");
                    else
                        Assert.True(content.TryGetProperty("text/html", out _) || content.TryGetProperty("text/csv", out _), $"{where}: {content}");
                }
                foreach (var refusal in new[] { "400", "401", "404", "409", "429" })
                    Assert.True(operation.Value.GetProperty("responses").TryGetProperty(refusal, out _), $"{where}: no {refusal} described");
                if (operation.Name is "post" or "put" or "patch" && !bodiless.Any(b => path.Name.EndsWith(b, StringComparison.Ordinal)))
                {
                    Assert.True(operation.Value.TryGetProperty("requestBody", out var body), $"{where}: its request body is not described");
                    if (body.GetProperty("content").TryGetProperty("application/json", out var json))
                        Assert.True(Fields(json.GetProperty("schema")).Count > 0, $"{where}: its request fields are not described");
                    else
                        Assert.True(body.GetProperty("content").TryGetProperty("text/csv", out _), $"{where}: {body}");
                }
            }

        // The documented request fields are exactly the ones each route accepts.
        SameFields(["email", "name", "cadence", "language", "timeZone", "hour", "weekday"], RequestFields("post", "/api/subscribers"));
        SameFields(["cadence", "language", "status", "timeZone", "hour", "weekday"], RequestFields("patch", "/api/subscribers/{email}"));
        SameFields(["cadence", "issue"], RequestFields("post", "/api/sends"));
        SameFields(["failed", "uncertain"], RequestFields("post", "/api/sends/{id}/resend"));
        SameFields(["slug", "title", "items", "intro", "period"], RequestFields("post", "/api/issues"));
        SameFields(["slug", "title", "items", "intro", "period"], RequestFields("put", "/api/issues/{slug}"));
        SameFields(["email"], Required(Content(Operation("post", "/api/subscribers").GetProperty("requestBody"), "application/json")));
        Assert.Empty(Required(Content(Operation("post", "/api/sends").GetProperty("requestBody"), "application/json")));
        SameFields(["title", "summary", "abstract", "links"], Fields(Resolve(Resolve(Content(Operation("post", "/api/issues").GetProperty("requestBody"), "application/json"))
            .GetProperty("properties").GetProperty("items"))));
        foreach (var (method, path, body) in new[]
        {
            ("post", "/api/subscribers", """{"email":"new@example.org","name":"N","cadence":"weekly","language":"ko"}"""),
            ("patch", "/api/subscribers/new@example.org", """{"cadence":"daily","language":"en","status":"active"}"""),
        })
        {
            using var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), path) { Content = Json(body) };
            using var accepted = await admin.SendAsync(request);
            Assert.True(accepted.IsSuccessStatusCode, $"{method} {path}: {await accepted.Content.ReadAsStringAsync()}");
        }

        // Every field of what the service answers is documented, and nothing documented is missing.
        var send = await JsonOf(await admin.PostAsync("/api/sends", Json("""{"cadence":"daily"}""")));
        var id = send.GetProperty("id").GetInt64();
        SameFields(Fields(Content(Success("post", "/api/sends"), "application/json")), send.EnumerateObject().Select(p => p.Name));
        foreach (var (template, url) in new[]
        {
            ("/api/issues", "/api/issues"), ("/api/issues/{slug}", $"/api/issues/{issue.Slug}"), ("/api/issues/{slug}/deliveries", $"/api/issues/{issue.Slug}/deliveries"),
            ("/api/subscribers", "/api/subscribers"), ("/api/subscribers/{email}", "/api/subscribers/reader@example.org"),
            ("/api/subscribers/{email}/history", "/api/subscribers/new@example.org/history"),
            ("/api/sends", "/api/sends"), ("/api/sends/{id}", $"/api/sends/{id}"), ("/api/sends/{id}/deliveries", $"/api/sends/{id}/deliveries"),
        })
        {
            var schema = Content(Success("get", template), "application/json");
            var answer = await JsonOf(await admin.GetAsync(url));
            var sample = answer.ValueKind == JsonValueKind.Array ? answer.EnumerateArray().First() : answer;
            SameFields(Fields(schema), sample.EnumerateObject().Select(p => p.Name), url);
            if (sample.TryGetProperty("items", out var items) && items.ValueKind == JsonValueKind.Array && items.GetArrayLength() > 0)
                SameFields(Fields(Resolve(schema).GetProperty("properties").GetProperty("items")), items[0].EnumerateObject().Select(p => p.Name), url);
        }
    }
}
