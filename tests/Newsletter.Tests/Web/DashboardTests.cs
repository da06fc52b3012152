using System.Net;
using Microsoft.Playwright;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Web;

/// <summary>The admin dashboard in headless Chromium against the real service, PostgreSQL and an SMTP server.</summary>
public sealed class DashboardTests
{
    private static Dictionary<string, string?> Sending(TestSmtpServer smtp) => new()
    {
        ["Newsletter__Smtp__Host"] = "127.0.0.1",
        ["Newsletter__Smtp__Port"] = smtp.Port.ToString(),
        ["Newsletter__Smtp__Security"] = "None",
        ["Newsletter__Delivery__PollInterval"] = "00:00:00.200",
        ["Newsletter__Schedule__MaxLateness"] = "00:00:00",
    };

    [Fact]
    public async Task Log_in_import_an_issue_preview_it_publish_broadcast_and_watch_the_run_finish()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var smtp = new TestSmtpServer();
        for (var i = 0; i < 12; i++)
            await db.Subscribers().AddActiveAsync(new NewSubscriber($"reader{i}@example.org", $"Reader {i}", i % 3 == 0 ? Cadence.Daily : Cadence.Weekly, Language.Both));
        await using var service = await ServiceProcess.StartAsync(db, Sending(smtp));
        await using var browser = await Browsers.LaunchAsync();
        var page = await (await browser.NewContextAsync(new() { BaseURL = service.BaseAddress.ToString() })).NewPageAsync();

        // Not signed in: the login page. A wrong key is refused.
        await page.GotoAsync("/admin/");
        Assert.EndsWith("/admin/login?ReturnUrl=%2Fadmin%2F", page.Url);
        await page.GetByLabel("Admin key").FillAsync("not-the-key");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.GetByText("That is not the admin key.").WaitForAsync();
        await page.GetByLabel("Admin key").FillAsync(ServiceProcess.AdminKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.Locator("h1", new() { HasTextString = "Overview" }).WaitForAsync();
        var cookie = (await page.Context.CookiesAsync()).Single(c => c.Name == "nl-admin");
        Assert.True(cookie.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, cookie.SameSite);
        Assert.Equal("12", (await page.Locator(".stat b").First.TextContentAsync())?.Trim());
        await ShootAsync(page, "overview");

        // Import the sample issue by pasting its JSON, preview it, publish it.
        await page.GetByRole(AriaRole.Link, new() { Name = "Issues" }).ClickAsync();
        await page.GetByLabel("or paste the JSON").FillAsync(await File.ReadAllTextAsync(Repository.PathOf("db/samples/top-ml-papers-2024-04-22.json")));
        await page.GetByRole(AriaRole.Button, new() { Name = "Import as a draft" }).ClickAsync();
        await page.GetByText($"Imported {SampleIssue.Document.Slug} as a draft (10 items).").WaitForAsync();
        await ShootAsync(page, "issues");
        var preview = await page.Context.NewPageAsync();
        await preview.GotoAsync($"/admin/issues/{SampleIssue.Document.Slug}/preview?language=both");
        Assert.Contains(SampleIssue.Document.Title.Ko!, await preview.TitleAsync());
        await preview.CloseAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Publish" }).ClickAsync();
        await page.GetByText($"Published {SampleIssue.Document.Slug}.").WaitForAsync();

        // Broadcast it and watch the run page (it reloads itself) until the run is done.
        await page.GetByRole(AriaRole.Button, new() { Name = "Broadcast now" }).ClickAsync();
        await page.Locator("#run-status", new() { HasTextString = "done" }).WaitForAsync(new() { Timeout = 30_000 });
        Assert.Equal("12", (await page.Locator("#run-sent").TextContentAsync())?.Trim());
        Assert.Equal("100", await page.Locator("progress").GetAttributeAsync("value"));
        await ShootAsync(page, "run");
        Assert.Equal(12, smtp.Messages.Count);

        // The overview charts the day's messages; the subscriber search finds by name.
        await page.GetByRole(AriaRole.Link, new() { Name = "Overview" }).ClickAsync();
        var bars = page.Locator("svg.chart").First.Locator("rect.bar");
        Assert.Equal(30, await bars.CountAsync());
        Assert.Contains(": 12", await bars.Last.Locator("title").TextContentAsync());
        Assert.Contains(": 12", await page.Locator("svg.chart").Last.Locator("rect.bar").Last.Locator("title").TextContentAsync()); // 12 active today
        await page.GetByRole(AriaRole.Link, new() { Name = "Subscribers" }).ClickAsync();
        await page.GetByLabel("Search").FillAsync("Reader 1");
        await page.GetByLabel("Cadence").SelectOptionAsync("weekly");
        await page.GetByRole(AriaRole.Button, new() { Name = "Search" }).ClickAsync();
        var emails = await page.Locator("tbody tr td:first-child").AllTextContentsAsync();
        Assert.Contains("reader1@example.org", emails);
        Assert.Contains("reader10@example.org", emails);
        Assert.DoesNotContain("reader2@example.org", emails);
        await ShootAsync(page, "subscribers");

        // Sign out: the dashboard asks for the key again.
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await page.GotoAsync("/admin/issues");
        Assert.Contains("/admin/login", page.Url);
    }

    [Fact]
    public async Task A_dashboard_form_without_its_antiforgery_token_is_refused_and_changes_nothing()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.Subscribers().AddActiveAsync(new NewSubscriber("reader@example.org", null, Cadence.Weekly, Language.En));
        await db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        await using var service = await ServiceProcess.StartAsync(db);
        using var client = new PageClient(new Uri(service.BaseAddress, "/"));

        // Anonymous: every dashboard page redirects to the login; posts do not run.
        var anonymous = await client.GetAsync("/admin/subscribers");
        Assert.Equal(HttpStatusCode.Redirect, anonymous.Status);
        await client.GetAsync("/admin/login");
        var noToken = await client.PostAsync("/admin/login", [("key", ServiceProcess.AdminKey)], withToken: false);
        Assert.Equal(HttpStatusCode.BadRequest, noToken.Status);
        await client.GetAsync("/admin/login");
        Assert.Equal(HttpStatusCode.SeeOther, (await client.PostAsync("/admin/login", [("key", ServiceProcess.AdminKey)])).Status);

        // Signed in, but a post without the token (what a forged cross-site form would send).
        var forged = await client.PostAsync($"/admin/issues/{SampleIssue.Document.Slug}/broadcast", [], withToken: false);
        Assert.Equal(HttpStatusCode.BadRequest, forged.Status);
        var send = await client.PostAsync("/admin/sends", [("cadence", "weekly")], withToken: false);
        Assert.Equal(HttpStatusCode.BadRequest, send.Status);
        Assert.Equal(0L, await db.ScalarAsync<long>("select count(*) from runs"));

        // With the token it works; bad input gets a 4xx page, not a 500.
        await client.GetAsync("/admin/");
        Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsync("/admin/sends", [("cadence", "hourly")])).Status);
        await client.GetAsync("/admin/");
        Assert.Equal(HttpStatusCode.SeeOther, (await client.PostAsync("/admin/sends", [("cadence", "weekly")])).Status);
        Assert.Equal(1L, await db.ScalarAsync<long>("select count(*) from runs"));
        await client.GetAsync("/admin/issues");
        var badJson = await client.PostAsync("/admin/issues", [("json", "{\"slug\": \"x\", \"surprise\": 1}")]);
        Assert.Equal(HttpStatusCode.BadRequest, badJson.Status);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/admin/runs/999")).Status);
    }

    private static async Task ShootAsync(IPage page, string name)
    {
        foreach (var width in new[] { 375, 1280 })
        {
            await page.SetViewportSizeAsync(width, 900);
            await page.ScreenshotAsync(new() { Path = Browsers.ScreenshotPath($"admin-{name}-{width}.png"), FullPage = true });
        }
    }
}
