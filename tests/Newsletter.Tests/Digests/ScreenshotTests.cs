using System.Text.Json;
using Microsoft.Playwright;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Digests;

/// <summary>The digest in real headless Chromium (Debian's chromium with fonts-noto-cjk), as a phone and a desktop client would lay it out.</summary>
public sealed class ScreenshotTests
{
    [Theory]
    [InlineData(600, ColorScheme.Light)]
    [InlineData(600, ColorScheme.Dark)]
    [InlineData(375, ColorScheme.Light)]
    [InlineData(375, ColorScheme.Dark)]
    public async Task The_digest_fits_the_screen_and_renders_korean_in_light_and_dark(int width, ColorScheme scheme)
    {
        var message = await TestMail.MessageAsync(Language.Both);
        await using var browser = await Browsers.LaunchAsync();
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = width, Height = 900 }, ColorScheme = scheme });
        await page.SetContentAsync(message.HtmlBody!);

        var overflow = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - window.innerWidth");
        Assert.True(overflow <= 0, $"content is {overflow}px wider than the {width}px screen");

        // The Korean title is drawn with a CJK font's glyphs, not boxes.
        var fonts = await Browsers.PlatformFontsAsync(page, "h1.issue-title");
        Assert.Contains(fonts, f => f.Family.Contains("CJK", StringComparison.OrdinalIgnoreCase) && f.Glyphs > 0);

        // Dark mode really changes the colours.
        var background = await page.EvaluateAsync<string>("() => getComputedStyle(document.querySelector('table.container')).backgroundColor");
        Assert.Equal(scheme == ColorScheme.Dark ? "rgb(31, 41, 55)" : "rgb(255, 255, 255)", background);

        var path = Browsers.ScreenshotPath($"digest-{width}px-{scheme.ToString().ToLowerInvariant()}.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        Assert.True(new FileInfo(path).Length > 10_000);
    }
}
