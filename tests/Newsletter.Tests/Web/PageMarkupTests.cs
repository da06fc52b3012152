using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using AngleSharp.Dom;
using AngleSharp.Html.Parser;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Web;

/// <summary>Every subscriber page parses without HTML errors and meets the basic accessibility rules.</summary>
public sealed partial class PageMarkupTests
{
    [Fact]
    public async Task Every_page_is_well_formed_html_with_a_language_a_title_one_heading_and_labelled_controls()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        var daily = await db.Subscribers().AddActiveAsync(new NewSubscriber("daily@example.org", "김독자", Cadence.Daily, Language.Ko));
        await using var service = await ServiceProcess.StartAsync(db);
        using var client = new PageClient(service.BaseAddress);
        var signer = new LinkSigner(TestMail.Secret);
        string Token(LinkPurpose p) => signer.Create(p, daily.PublicId, DateTimeOffset.UtcNow);

        var pages = new List<(string Name, string Html)>
        {
            ("subscribe", (await client.GetAsync("/subscribe")).Html),
            ("subscribe-en", (await client.GetAsync("/subscribe?lang=en")).Html),
        };
        pages.Add(("subscribe-error", (await client.PostAsync("/subscribe?lang=en", [("email", "nope"), ("name", ""), ("cadence", "weekly"), ("language", "en"), ("website", "")])).Html));
        await client.GetAsync("/subscribe");
        pages.Add(("check-inbox", (await client.PostAsync("/subscribe", [("email", "new@example.org"), ("name", ""), ("cadence", "weekly"), ("language", "ko"), ("website", "")])).Html));
        pages.Add(("confirm", (await client.GetAsync($"/confirm/{Token(LinkPurpose.Confirm)}")).Html));
        pages.Add(("preferences", (await client.GetAsync($"/preferences/{Token(LinkPurpose.Preferences)}")).Html));
        pages.Add(("unsubscribe", (await client.GetAsync($"/unsubscribe/{Token(LinkPurpose.Unsubscribe)}")).Html));
        pages.Add(("unsubscribed", (await client.PostAsync($"/unsubscribe/{Token(LinkPurpose.Unsubscribe)}", [], withToken: false)).Html));
        pages.Add(("archive", (await client.GetAsync("/issues")).Html));
        pages.Add(("issue", (await client.GetAsync($"/issues/{SampleIssue.Document.Slug}?lang=both")).Html));
        pages.Add(("not-found", (await client.GetAsync("/unsubscribe/forged")).Html));

        foreach (var (name, html) in pages)
        {
            var errors = new List<string>();
            var parser = new HtmlParser();
            parser.Error += (_, e) => errors.Add(((AngleSharp.Html.Dom.Events.HtmlErrorEvent)e).Message);
            var document = parser.ParseDocument(html);
            Assert.True(errors.Count == 0, $"{name}: {string.Join("; ", errors)}");
            Assert.Contains(document.DocumentElement.GetAttribute("lang"), new[] { "ko", "en" });
            Assert.False(string.IsNullOrWhiteSpace(document.Title), $"{name}: no title");
            Assert.True(document.QuerySelectorAll("h1").Length == 1, $"{name}: not exactly one h1");
            foreach (var control in document.QuerySelectorAll("input, select, textarea"))
            {
                if (control.GetAttribute("type") is "hidden" or "submit" || control.Closest("[aria-hidden=true]") is not null) continue;
                var id = control.Id;
                Assert.True(id is not null && document.QuerySelector($"label[for='{id}']") is not null || control.Closest("label") is not null,
                    $"{name}: {control.OuterHtml} has no label");
            }
            Assert.All(document.QuerySelectorAll("button, a"), e => Assert.False(string.IsNullOrWhiteSpace(e.TextContent), $"{name}: {e.OuterHtml} has no text"));
            Assert.All(document.QuerySelectorAll("form[method=post]").Where(f => !f.GetAttribute("action")!.StartsWith("/unsubscribe/", StringComparison.Ordinal)),
                f => Assert.NotNull(f.QuerySelector("input[name=__af]")));
        }
    }

    [Fact]
    public async Task Text_and_buttons_have_at_least_the_contrast_wcag_asks_for_in_light_and_dark_mode()
    {
        var layout = await File.ReadAllTextAsync(Repository.PathOf("templates/web/_Layout.cshtml"));
        var schemes = Variables().Matches(layout).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(2, schemes.Count); // light, then dark
        foreach (var scheme in schemes)
        {
            var colour = Colour().Matches(scheme).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
            foreach (var (fg, bg) in new[] { ("fg", "card"), ("fg", "bg"), ("muted", "card"), ("muted", "bg"), ("accent-fg", "accent"), ("fg", "card") })
                Assert.True(Contrast(colour[fg], colour[bg]) >= 4.5, $"--{fg} on --{bg}: {Contrast(colour[fg], colour[bg]):0.0}:1 in {scheme}");
        }
    }

    private static double Contrast(string a, string b)
    {
        static double Luminance(string hex)
        {
            var rgb = Enumerable.Range(0, 3).Select(i => int.Parse(hex.Substring(1 + i * 2, 2), NumberStyles.HexNumber) / 255.0)
                .Select(c => c <= 0.03928 ? c / 12.92 : Math.Pow((c + 0.055) / 1.055, 2.4)).ToArray();
            return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
        }
        var (l1, l2) = (Luminance(a), Luminance(b));
        return (Math.Max(l1, l2) + 0.05) / (Math.Min(l1, l2) + 0.05);
    }

    [GeneratedRegex(@":root \{([^}]*)\}")]
    private static partial Regex Variables();

    [GeneratedRegex(@"--([a-z-]+): (#[0-9a-f]{6});")]
    private static partial Regex Colour();
}
