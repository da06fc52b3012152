using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Newsletter.Issues;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Web;

/// <summary>
/// A reader's whole journey in headless Chromium against the real service, PostgreSQL and an SMTP
/// server: sign up, confirm from the mail, switch to daily, get the daily digest, leave with the
/// footer link, leave again with a raw one-click POST, and get nothing more.
/// </summary>
public sealed class SubscriberJourneyTests
{
    private const string Email = "minji@example.org";

    [Fact]
    public async Task Sign_up_confirm_switch_to_daily_receive_unsubscribe_twice_and_nothing_more_is_sent()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var smtp = new TestSmtpServer();
        await db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        await using var service = await ServiceProcess.StartAsync(db, new Dictionary<string, string?>
        {
            ["Newsletter__Smtp__Host"] = "127.0.0.1",
            ["Newsletter__Smtp__Port"] = smtp.Port.ToString(),
            ["Newsletter__Smtp__Security"] = "None",
            ["Newsletter__Delivery__PollInterval"] = "00:00:00.200",
            ["Newsletter__Schedule__MaxLateness"] = "00:00:00",
        });
        using var admin = service.Admin();
        await using var browser = await Browsers.LaunchAsync();
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = service.BaseAddress.ToString(), Locale = "en-US" });
        var page = await context.NewPageAsync();

        // Sign up through the form (weekly is the default).
        await page.GotoAsync("/subscribe");
        Assert.Equal("en", await page.GetAttributeAsync("html", "lang"));
        await ShootAsync(page, "subscribe");
        Assert.True(await page.IsCheckedAsync("input[name=cadence][value=weekly]"));
        await page.GetByLabel("Email address").FillAsync(Email);
        await page.GetByLabel("Name").FillAsync("김민지");
        await page.GetByLabel("Language").SelectOptionAsync("both");
        await page.GetByRole(AriaRole.Button, new() { Name = "Subscribe" }).ClickAsync();
        await Expect(page, "Check your inbox");
        await ShootAsync(page, "check-inbox");

        // The confirmation mail arrives; its link opens a page with one button.
        var confirmation = await WaitForAsync(() => smtp.Messages.FirstOrDefault(m => m.Recipients.Contains(Email)));
        var link = Regex.Match(confirmation.Message.TextBody ?? "", @"http\S+/confirm/\S+").Value;
        Assert.StartsWith(service.BaseAddress.ToString().TrimEnd('/'), link);
        await page.GotoAsync(link);
        await Expect(page, "구독을 확인해 주세요"); // the subscriber chose both languages: Korean first
        await ShootAsync(page, "confirm");
        Assert.Equal("pending", await db.ScalarAsync<string>($"select status from subscribers where email = '{Email}'"));
        await page.GetByRole(AriaRole.Button, new() { Name = "구독 확인" }).ClickAsync();
        await Expect(page, "구독이 확인되었습니다");
        await ShootAsync(page, "confirmed");

        // Preferences: switch to daily.
        await page.GetByRole(AriaRole.Link, new() { Name = "구독 설정 바꾸기" }).ClickAsync();
        await Expect(page, "구독 설정");
        await page.CheckAsync("input[name=cadence][value=daily]");
        await page.GetByRole(AriaRole.Button, new() { Name = "저장" }).ClickAsync();
        await page.GetByText("저장했습니다.").WaitForAsync();
        await ShootAsync(page, "preferences");
        Assert.Equal("daily", await db.ScalarAsync<string>($"select cadence from subscribers where email = '{Email}'"));

        // The next daily run mails this subscriber.
        var run = await StartAndFinishAsync(admin, "daily");
        Assert.Equal(1, run.GetProperty("sent").GetInt32());
        var digest = smtp.Messages.Last(m => m.Recipients.Contains(Email)).Message;
        var listUnsubscribe = (digest.Headers["List-Unsubscribe"] ?? "").Trim().Trim('<', '>');
        var footer = Regex.Match(digest.HtmlBody ?? "", "href=\"([^\"]+/unsubscribe/[^\"]+)\"").Groups[1].Value;
        Assert.Equal(listUnsubscribe, WebUtility.HtmlDecode(footer));

        // Unsubscribe with the footer link's page.
        await page.GotoAsync(WebUtility.HtmlDecode(footer));
        await Expect(page, "구독을 해지할까요?");
        Assert.True(await page.GetByRole(AriaRole.Button, new() { Name = "매주 받기로 바꾸기" }).IsVisibleAsync()); // the gentler choice for a daily reader
        await ShootAsync(page, "unsubscribe");
        Assert.Equal("active", await db.ScalarAsync<string>($"select status from subscribers where email = '{Email}'"));
        await page.GetByRole(AriaRole.Button, new() { Name = "구독 해지" }).ClickAsync();
        await Expect(page, "구독이 해지되었습니다");
        Assert.True(await page.GetByRole(AriaRole.Button, new() { Name = "다시 구독" }).IsVisibleAsync());
        await ShootAsync(page, "unsubscribed");

        // And again, as a mail provider does it: a raw RFC 8058 POST with no cookies.
        using (var raw = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }))
        using (var response = await raw.PostAsync(listUnsubscribe, new StringContent("List-Unsubscribe=One-Click", Encoding.ASCII, "application/x-www-form-urlencoded")))
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("unsubscribed", await db.ScalarAsync<string>($"select status from subscribers where email = '{Email}'"));

        // Nothing more is sent: a new issue and another daily run leave this reader out.
        var sentBefore = smtp.Messages.Count(m => m.Recipients.Contains(Email));
        await db.Issues().ImportAsync(SampleIssue.Document with { Slug = "the-next-issue" }, publish: true);
        var after = await StartAndFinishAsync(admin, "daily");
        Assert.Equal(0, after.GetProperty("total").GetInt32());
        await Task.Delay(500);
        Assert.Equal(sentBefore, smtp.Messages.Count(m => m.Recipients.Contains(Email)));

        var history = JsonDocument.Parse(await admin.GetStringAsync($"/api/subscribers/{Email}/history")).RootElement.EnumerateArray()
            .Select(e => (e.GetProperty("event").GetString(), e.GetProperty("source").GetString())).ToList();
        Assert.Equal([("subscribed", "page"), ("confirmed", "page"), ("cadence_changed", "preferences"), ("unsubscribed", "page")], history);

        // The archive and the issue page render too.
        await page.GotoAsync("/issues?lang=en");
        await Expect(page, "Archive");
        await ShootAsync(page, "archive");
        await page.GotoAsync($"/issues/{SampleIssue.Document.Slug}?lang=ko");
        await ShootAsync(page, "issue");
    }

    private static async Task<JsonElement> StartAndFinishAsync(HttpClient admin, string cadence)
    {
        using var start = await admin.PostAsync("/api/sends", new StringContent($$"""{"cadence":"{{cadence}}"}""", Encoding.UTF8, "application/json"));
        start.EnsureSuccessStatusCode();
        var id = JsonDocument.Parse(await start.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetInt64();
        for (var i = 0; i < 200; i++)
        {
            var run = JsonDocument.Parse(await admin.GetStringAsync($"/api/sends/{id}")).RootElement;
            if (run.GetProperty("status").GetString() == "done") return run;
            await Task.Delay(100);
        }
        throw new TimeoutException($"the {cadence} run did not finish");
    }

    private static async Task<T> WaitForAsync<T>(Func<T?> probe) where T : class
    {
        for (var i = 0; i < 150; i++)
        {
            if (probe() is { } value) return value;
            await Task.Delay(100);
        }
        throw new TimeoutException("the mail did not arrive");
    }

    private static async Task Expect(IPage page, string heading) =>
        await page.Locator("h1", new() { HasTextString = heading }).WaitForAsync(new() { Timeout = 10_000 });

    /// <summary>A screenshot at phone and desktop width; neither may scroll sideways.</summary>
    private static async Task ShootAsync(IPage page, string name)
    {
        foreach (var width in new[] { 375, 1280 })
        {
            await page.SetViewportSizeAsync(width, 900);
            await page.ScreenshotAsync(new() { Path = Browsers.ScreenshotPath($"page-{name}-{width}.png"), FullPage = true });
            var overflow = await page.EvaluateAsync<bool>("document.documentElement.scrollWidth > document.documentElement.clientWidth");
            Assert.False(overflow, $"{name} scrolls sideways at {width}px");
        }
    }
}
