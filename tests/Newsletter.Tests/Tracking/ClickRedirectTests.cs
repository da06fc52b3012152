using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Tracking;

/// <summary>
/// <c>/r/{token}</c> on the running service: where it sends a request, what it refuses, the per-address
/// limit, what ends up counted (the API and the dashboard's issue page, in headless Chromium).
/// </summary>
public sealed partial class ClickRedirectTests
{
    private const string Browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

    private static HttpClient From(Uri service, string from) => Newsletter.Testing.LoopbackClient.From(service, from, Browser);

    [Fact]
    public async Task Redirects_go_only_to_the_issues_own_links_bad_tokens_get_the_404_page_and_only_readers_are_counted()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var smtp = new TestSmtpServer();
        var issue = await db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        await db.Subscribers().AddActiveAsync(new NewSubscriber("reader@example.org", null, Cadence.Weekly, Language.En));
        await db.Subscribers().AddActiveAsync(new NewSubscriber("leaving@example.org", null, Cadence.Weekly, Language.Ko));
        var settings = ServiceProcess.SendingTo(smtp);
        settings["Newsletter__Tracking__RequestsPerMinute"] = "100";
        settings["Newsletter__Archive__ShowMostRead"] = "true";
        await using var service = await ServiceProcess.StartAsync(db, settings);
        using var admin = service.Admin();
        var start = await admin.PostAsync("/api/sends", new StringContent("""{"cadence":"weekly"}""", Encoding.UTF8, "application/json"));
        var run = await ServiceProcess.WaitForRunAsync(admin, (await start.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetInt64());
        Assert.Equal(2, run.GetProperty("sent").GetInt32());
        var mail = smtp.Messages.ToDictionary(m => m.Recipients[0], m => m.Message);
        var tokens = mail.ToDictionary(m => m.Key, m => Token().Matches(m.Value.HtmlBody!).Select(x => x.Groups[1].Value).ToList());
        var expected = issue.Items.SelectMany(i => i.Links.Select(l => l.Url)).ToList();
        Assert.Equal(expected.Count, tokens["reader@example.org"].Count);
        Assert.Equal(tokens["reader@example.org"], Token().Matches(mail["reader@example.org"].TextBody!).Select(x => x.Groups[1].Value).ToList());
        var redirected = 0;

        // Every link, fetched as a scanner does on arrival: each answered with its own target, nowhere else.
        using var local = From(service.BaseAddress, "127.0.0.1");
        for (var i = 0; i < expected.Count; i++)
        {
            using var response = await local.GetAsync($"/r/{tokens["reader@example.org"][i]}");
            Assert.Equal(HttpStatusCode.Found, response.StatusCode);
            Assert.Equal(expected[i], response.Headers.Location!.OriginalString);
            Assert.Contains("no-store", response.Headers.CacheControl!.ToString());
            redirected++;
        }
        using (var head = await local.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/r/{tokens["leaving@example.org"][0]}")))
        {
            Assert.Equal(HttpStatusCode.Found, head.StatusCode);
            Assert.Equal(expected[0], head.Headers.Location!.OriginalString);
            redirected++;
        }

        // Forged, truncated, extended, another purpose's token, garbage: the 404 page, nothing counted.
        var good = tokens["reader@example.org"][0];
        var unsubscribe = UnsubscribeToken().Match(mail["reader@example.org"].HtmlBody!).Groups[1].Value;
        foreach (var bad in new[] { good[..20] + (good[20] == 'x' ? 'y' : 'x') + good[21..], good[..^1], good + "A", unsubscribe, "not-a-token", new string('A', 43) })
        {
            using var response = await local.GetAsync($"/r/{bad}");
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Null(response.Headers.Location);
            Assert.Contains("text/html", response.Content.Headers.ContentType!.ToString());
        }

        // An erased reader's links stop working.
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/subscribers/leaving@example.org")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await local.GetAsync($"/r/{tokens["leaving@example.org"][1]}")).StatusCode);

        // A correction that removes the last paper's last link: its token finds nothing; the others still work.
        var corrected = JsonNodeWithoutLastLink(await File.ReadAllTextAsync(Repository.PathOf("db/samples/top-ml-papers-2024-04-22.json")));
        var put = await admin.PutAsync($"/api/issues/{issue.Slug}?correction=true", new StringContent(corrected, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await local.GetAsync($"/r/{tokens["reader@example.org"][^1]}")).StatusCode);
        using (var still = await local.GetAsync($"/r/{tokens["reader@example.org"][^2]}"))
        {
            Assert.Equal(HttpStatusCode.Found, still.StatusCode);
            redirected++;
        }

        // One address flooding: refused with 429 once over its limit, while another address goes through.
        using var flood = From(service.BaseAddress, "127.0.0.3");
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 110; i++)
        {
            using var response = await flood.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/r/{good}"));
            statuses.Add(response.StatusCode);
        }
        Assert.Equal(100, statuses.Count(s => s == HttpStatusCode.Found));
        Assert.Equal(10, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
        redirected += 100;

        // The reader, a while after the message arrived, opens the second paper.
        var sentAt = mail["reader@example.org"].Date;
        var wait = sentAt.AddSeconds(11) - DateTimeOffset.UtcNow;
        if (wait > TimeSpan.Zero) await Task.Delay(wait);
        using var reader = From(service.BaseAddress, "127.0.0.2");
        var second = issue.Items[0].Links.Count;
        using (var click = await reader.GetAsync($"/r/{tokens["reader@example.org"][second]}"))
        {
            Assert.Equal(HttpStatusCode.Found, click.StatusCode);
            Assert.Equal(expected[second], click.Headers.Location!.OriginalString);
            redirected++;
        }

        // Counted in batches: every redirected request, and one reader of the second paper.
        JsonElement clicks = default;
        for (var i = 0; i < 100; i++)
        {
            clicks = await admin.GetFromJsonAsync<JsonElement>($"/api/issues/{issue.Slug}/clicks");
            if (clicks.GetProperty("filtered").GetProperty("requests").GetInt64() == redirected && clicks.GetProperty("clickers").GetInt64() == 1) break;
            await Task.Delay(200);
        }
        Assert.Equal(redirected, clicks.GetProperty("filtered").GetProperty("requests").GetInt64());
        Assert.Equal(1, clicks.GetProperty("filtered").GetProperty("human").GetInt64());
        Assert.Equal(1, clicks.GetProperty("clickers").GetInt64());
        Assert.Equal(1, clicks.GetProperty("delivered").GetInt64()); // the erased reader's delivery went with them
        var papers = clicks.GetProperty("papers").EnumerateArray().ToList();
        Assert.Equal(issue.Items.Count, papers.Count);
        Assert.Equal(1, papers[1].GetProperty("clickers").GetInt64());
        Assert.Equal(1, papers[1].GetProperty("byLanguage").GetProperty("en").GetInt64());
        Assert.Equal(0, papers[0].GetProperty("clickers").GetInt64());
        Assert.Equal("aggregate", clicks.GetProperty("mode").GetString());
        var removed = clicks.GetProperty("filtered").GetProperty("removed");
        Assert.True(removed.GetProperty("head").GetInt64() >= 101);
        Assert.Equal(0L, await db.ScalarAsync<long>("select count(*) from clicks"));
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/issues/no-such-issue/clicks")).StatusCode);
        var metrics = await admin.GetStringAsync("/metrics");
        Assert.Contains("newsletter_click_requests_total{verdict=\"human\"} 1\n", metrics);
        Assert.Contains($"newsletter_click_requests_total{{verdict=\"head\"}} {removed.GetProperty("head").GetInt64()}\n", metrics);
        Assert.Contains("newsletter_click_requests_dropped_total 0\n", metrics);

        // The public issue page names the most read paper (and only papers someone read).
        var archive = await service.Http.GetStringAsync($"/issues/{issue.Slug}?lang=en");
        var mostRead = Regex.Match(archive, "<aside class=\"most-read\".*?</aside>", RegexOptions.Singleline).Value;
        Assert.Contains("Most read this week", mostRead);
        Assert.Single(Regex.Matches(mostRead, "<li>"));
        Assert.Contains("href=\"#paper-2\"", mostRead);
        Assert.Contains("id=\"paper-2\"", archive);

        // The dashboard's issue page: the papers ranked in a chart drawn on the server.
        await using var browser = await Browsers.LaunchAsync();
        var page = await (await browser.NewContextAsync(new() { BaseURL = service.BaseAddress.ToString() })).NewPageAsync();
        await page.GotoAsync("/admin/login");
        await page.GetByLabel("Admin key").FillAsync(ServiceProcess.AdminKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Issues" }).ClickAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Clicks" }).ClickAsync();
        await page.Locator("#clicks-summary").WaitForAsync();
        Assert.Contains("1 readers opened at least one paper", await page.Locator("#clicks-summary").TextContentAsync());
        var bars = page.Locator("#clicks-chart svg rect.bar");
        Assert.Equal(issue.Items.Count, await bars.CountAsync());
        Assert.Contains("Paper 2: 1 readers", await bars.First.Locator("title").TextContentAsync()); // ranked: the read one first
        Assert.Contains("head", await page.Locator("#clicks-filtered").TextContentAsync());
        foreach (var width in new[] { 375, 1280 })
        {
            await page.SetViewportSizeAsync(width, 900);
            await page.ScreenshotAsync(new() { Path = Browsers.ScreenshotPath($"admin-issue-clicks-{width}.png"), FullPage = true });
        }
    }

    private static string JsonNodeWithoutLastLink(string json)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(json)!;
        var items = node["items"]!.AsArray();
        var links = items[^1]!["links"]!.AsArray();
        links.RemoveAt(links.Count - 1);
        return node.ToJsonString();
    }

    [GeneratedRegex(@"/r/([A-Za-z0-9_-]{43})")]
    private static partial Regex Token();

    [GeneratedRegex(@"/unsubscribe/([A-Za-z0-9_.-]+)")]
    private static partial Regex UnsubscribeToken();
}
