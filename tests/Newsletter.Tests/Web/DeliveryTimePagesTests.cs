using Microsoft.Playwright;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;
using Newsletter.Web;

namespace Newsletter.Tests.Web;

/// <summary>The delivery time on the sign-up and preferences pages, in headless Chromium with JavaScript on and off.</summary>
public sealed class DeliveryTimePagesTests
{
    private static readonly LinkSigner Signer = new(TestMail.Secret);

    [Fact]
    public async Task The_sign_up_form_takes_the_browsers_zone_with_JavaScript_and_the_configured_one_without_and_preferences_change_the_hour()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var service = await ServiceProcess.StartAsync(db, new Dictionary<string, string?>
        {
            ["Newsletter__Schedule__TimeZone"] = "Asia/Seoul",
            ["Newsletter__Schedule__DeliveryHour"] = "8",
        });
        await using var browser = await Browsers.LaunchAsync();

        // JavaScript on, a browser in New York: the zone is prefilled from the browser.
        var withScript = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = service.BaseAddress.ToString(), Locale = "en-US", TimezoneId = "America/New_York",
        });
        var page = await withScript.NewPageAsync();
        var first = await page.GotoAsync("/subscribe?lang=en");
        if (first!.Status != 200) Assert.Fail((await service.StopAsync()).Error);
        Assert.Equal("America/New_York", await page.Locator("#time_zone").InputValueAsync());
        Assert.Equal("8", await page.Locator("#hour").InputValueAsync());
        Assert.Equal("8:00 AM", (await page.Locator("#hour option:checked").TextContentAsync())?.Trim());
        Assert.Contains("Americas", await page.Locator("#time_zone optgroup").EvaluateAllAsync<string[]>("g => g.map(x => x.label)"));
        await ShootAsync(page, "subscribe-en");
        await page.GetByLabel("Email address").FillAsync("newyork@example.net");
        await page.GetByLabel("Hour").SelectOptionAsync("7");
        await page.GetByLabel("Weekday").SelectOptionAsync("friday");
        await page.GetByRole(AriaRole.Button, new() { Name = "Subscribe" }).ClickAsync();
        await page.Locator("h1", new() { HasTextString = "Check your inbox" }).WaitForAsync();
        Assert.Equal("America/New_York 7 5", await db.ScalarAsync<string>(
            "select time_zone || ' ' || delivery_hour || ' ' || weekly_day from subscribers where email = 'newyork@example.net'"));

        // JavaScript off: the configured zone is shown, and the form works the same.
        var withoutScript = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = service.BaseAddress.ToString(), Locale = "ko-KR", TimezoneId = "America/New_York", JavaScriptEnabled = false,
        });
        var plain = await withoutScript.NewPageAsync();
        await plain.GotoAsync("/subscribe?lang=ko");
        Assert.Equal("Asia/Seoul", await plain.Locator("#time_zone").InputValueAsync());
        Assert.Equal("오전 8시", (await plain.Locator("#hour option:checked").TextContentAsync())?.Trim());
        Assert.Contains("아시아", await plain.Locator("#time_zone optgroup").EvaluateAllAsync<string[]>("g => g.map(x => x.label)"));
        await ShootAsync(plain, "subscribe-ko-no-script");
        await plain.Locator("#email").FillAsync("kathmandu@example.net");
        await plain.Locator("#time_zone").SelectOptionAsync("Asia/Kathmandu");
        await plain.Locator("#hour").SelectOptionAsync("21");
        Assert.Equal("오후 9시", (await plain.Locator("#hour option:checked").TextContentAsync())?.Trim());
        await plain.Locator("button[type=submit]").ClickAsync();
        await plain.Locator("h1", new() { HasTextString = "메일함을 확인해 주세요" }).WaitForAsync();
        Assert.Equal("Asia/Kathmandu 21", await db.ScalarAsync<string>("select time_zone || ' ' || delivery_hour from subscribers where email = 'kathmandu@example.net'"));

        // A forged zone is refused naming the field, in the reader's language; nothing is stored.
        using (var client = new PageClient(service.BaseAddress))
        {
            await client.GetAsync("/subscribe?lang=en");
            var refused = await client.PostAsync("/subscribe?lang=en", [("email", "forged@example.net"), ("time_zone", "Mars/Olympus_Mons"), ("hour", "8"), ("weekday", "monday")]);
            Assert.Equal(400, (int)refused.Status);
            Assert.Contains("Time zone", PageClient.Text(refused.Html));
            Assert.Equal(0L, await db.ScalarAsync<long>("select count(*) from subscribers where email = 'forged@example.net'"));
        }

        // Preferences: the reader's own zone is shown (not replaced by the browser's), and a new hour is saved and recorded.
        var id = await db.ScalarAsync<Guid>("select public_id from subscribers where email = 'kathmandu@example.net'");
        await page.GotoAsync($"/preferences/{Signer.Create(LinkPurpose.Preferences, id, DateTimeOffset.UtcNow)}");
        Assert.Equal("Asia/Kathmandu", await page.Locator("#time_zone").InputValueAsync());
        Assert.True(await page.Locator("#click_tracking").IsCheckedAsync());
        await ShootAsync(page, "preferences-delivery-time");
        await page.Locator("#hour").SelectOptionAsync("6");
        await page.Locator("form button.primary").ClickAsync();
        await page.GetByRole(AriaRole.Status).WaitForAsync();
        Assert.Equal((short)6, await db.ScalarAsync<short>("select delivery_hour from subscribers where email = 'kathmandu@example.net'"));
        Assert.Equal("Asia/Kathmandu 21 monday -> Asia/Kathmandu 06 monday", await db.ScalarAsync<string>(
            "select e.detail from subscription_events e join subscribers s on s.id = e.subscriber_id where s.email = 'kathmandu@example.net' and e.event = 'delivery_time_changed'"));
    }

    /// <summary>The page at a phone's width and a desktop's, into TestResults/screenshots/.</summary>
    private static async Task ShootAsync(IPage page, string name)
    {
        foreach (var width in new[] { 375, 1280 })
        {
            await page.SetViewportSizeAsync(width, 900);
            await page.ScreenshotAsync(new() { Path = Browsers.ScreenshotPath($"{name}-{width}.png"), FullPage = true });
        }
    }
}
