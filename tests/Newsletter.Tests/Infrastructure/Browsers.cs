using System.Text.Json;
using Microsoft.Playwright;

namespace Newsletter.Tests.Infrastructure;

/// <summary>Headless Chromium from Debian's package, driven by Playwright (no browser download).</summary>
public static class Browsers
{
    public const string ChromiumPath = "/usr/bin/chromium";

    private static readonly Lazy<Task<IPlaywright>> Playwright = new(Microsoft.Playwright.Playwright.CreateAsync);

    public static async Task<IBrowser> LaunchAsync()
    {
        if (!File.Exists(ChromiumPath))
            throw new InvalidOperationException($"{ChromiumPath} is missing: apt-get install chromium fonts-noto-cjk (.ci/run does it)");
        var playwright = await Playwright.Value;
        return await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
        });
    }

    /// <summary>Where screenshots are kept: <c>TestResults/screenshots/</c> at the repository root.</summary>
    public static string ScreenshotPath(string name)
    {
        var dir = Repository.PathOf(Path.Combine("TestResults", "screenshots"));
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }

    /// <summary>The fonts Chromium used to draw the text of the first element matching <paramref name="selector"/> (DevTools CSS.getPlatformFontsForNode).</summary>
    public static async Task<IReadOnlyList<(string Family, int Glyphs)>> PlatformFontsAsync(IPage page, string selector)
    {
        var cdp = await page.Context.NewCDPSessionAsync(page);
        await cdp.SendAsync("DOM.enable");
        await cdp.SendAsync("CSS.enable");
        var document = await cdp.SendAsync("DOM.getDocument");
        var root = document!.Value.GetProperty("root").GetProperty("nodeId").GetInt32();
        var node = await cdp.SendAsync("DOM.querySelector", new Dictionary<string, object> { ["nodeId"] = root, ["selector"] = selector });
        var nodeId = node!.Value.GetProperty("nodeId").GetInt32();
        var fonts = await cdp.SendAsync("CSS.getPlatformFontsForNode", new Dictionary<string, object> { ["nodeId"] = nodeId });
        return fonts!.Value.GetProperty("fonts").EnumerateArray()
            .Select(f => (f.GetProperty("familyName").GetString() ?? "", f.GetProperty("glyphCount").GetInt32()))
            .ToList();
    }
}
