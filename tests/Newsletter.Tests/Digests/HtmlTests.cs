using System.Text;
using AngleSharp.Html.Parser;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Digests;

public sealed class HtmlTests
{
    private static readonly HtmlParser Parser = new();

    [Fact]
    public async Task The_html_is_table_based_600px_with_lang_meta_dark_mode_and_a_preheader()
    {
        var message = await TestMail.MessageAsync(Language.Both);
        var doc = Parser.ParseDocument(message.HtmlBody!);

        Assert.Equal("ko", doc.DocumentElement.GetAttribute("lang"));
        Assert.NotNull(doc.QuerySelector("meta[charset=utf-8]"));
        Assert.NotNull(doc.QuerySelector("meta[name=viewport]"));
        Assert.Equal("light dark", doc.QuerySelector("meta[name=color-scheme]")?.GetAttribute("content"));
        Assert.False(string.IsNullOrWhiteSpace(doc.Title));
        Assert.Empty(doc.QuerySelectorAll("link[rel=stylesheet]"));
        Assert.Empty(doc.QuerySelectorAll("script, img:not([alt])"));

        // Layout tables are presentational, and the content column is at most 600px wide.
        Assert.All(doc.QuerySelectorAll("table"), t => Assert.Equal("presentation", t.GetAttribute("role")));
        var container = doc.QuerySelector("table.container")!;
        Assert.Equal("600", container.GetAttribute("width"));
        Assert.Contains("max-width: 600px", container.GetAttribute("style"));

        // The media queries survive inlining: mobile width and dark mode.
        var style = string.Join("\n", doc.QuerySelectorAll("style").Select(s => s.TextContent));
        Assert.Contains("prefers-color-scheme: dark", style);
        Assert.Contains("max-width: 620px", style);

        // A real preheader, hidden only by itself; English and Korean blocks carry their lang.
        var preheader = doc.QuerySelector(".preheader")!;
        Assert.InRange(preheader.TextContent.Length, 40, 110);
        Assert.Contains("display:none", preheader.GetAttribute("style"));
        Assert.Single(doc.QuerySelectorAll("[style*='display:none'], [style*='display: none']"));
        Assert.NotEmpty(doc.QuerySelectorAll("[lang=en]"));
    }

    [Fact]
    public async Task Css_is_inlined_without_warnings_and_hangul_stays_literal()
    {
        var digest = await TestMail.Renderer().RenderAsync([TestMail.SampleIssue()], Language.Both);
        var html = digest.Personalize(new Recipient("박지수", "https://x.example/u", "https://x.example/p")).Html;
        var doc = Parser.ParseDocument(html);

        Assert.Empty(digest.CssWarnings);
        Assert.All(doc.Body!.QuerySelectorAll("[class]").Where(e => e.ClassName != "preheader"), e => Assert.False(string.IsNullOrEmpty(e.GetAttribute("style")), e.ClassName));
        Assert.Contains("이번 주의 주요 ML 논문", html);
        Assert.Contains("박지수님, 안녕하세요.", html);
        Assert.DoesNotContain("&#x", html);
    }

    [Theory]
    [InlineData(Language.Ko, "ko")]
    [InlineData(Language.En, "en")]
    [InlineData(Language.Both, "ko")]
    public async Task Each_language_shows_its_own_texts(Language language, string documentLang)
    {
        var message = await TestMail.MessageAsync(language);
        var doc = Parser.ParseDocument(message.HtmlBody!);
        var issue = TestMail.SampleIssue();
        var body = doc.Body!.TextContent;

        Assert.Equal(documentLang, doc.DocumentElement.GetAttribute("lang"));
        var hasKorean = body.Contains(issue.Items[0].Summary.Ko!, StringComparison.Ordinal);
        var hasEnglish = body.Contains(issue.Items[0].Summary.En!, StringComparison.Ordinal);
        Assert.Equal(language != Language.En, hasKorean);
        Assert.Equal(language != Language.Ko, hasEnglish);
        if (language == Language.Both)
            Assert.True(body.IndexOf(issue.Items[0].Summary.Ko!, StringComparison.Ordinal) < body.IndexOf(issue.Items[0].Summary.En!, StringComparison.Ordinal), "Korean comes first");
        Assert.Contains(language == Language.En ? "You receive this because" : "이 메일은", doc.QuerySelector(".footer")!.TextContent);
    }

    [Fact]
    public async Task A_ten_paper_issue_in_both_languages_stays_under_gmails_clipping_limit()
    {
        var message = await TestMail.MessageAsync(Language.Both);
        var html = message.HtmlBody!;
        var encoded = TestMail.Bytes(message).Length;

        Assert.Equal(10, TestMail.SampleIssue().Items.Count);
        Assert.True(Encoding.UTF8.GetByteCount(html) < 90_000, $"decoded HTML is {Encoding.UTF8.GetByteCount(html)} bytes");
        Assert.True(encoded < 102_000, $"encoded HTML part is {encoded} bytes");
    }

    [Fact]
    public async Task Values_from_data_are_html_encoded_never_raw()
    {
        var hostile = "<script>alert(1)</script>\"><img src=x onerror=alert(1)>";
        var sample = TestMail.SampleIssue();
        var items = sample.Items.Select((it, i) => i == 0 ? it with { Summary = new LocalizedText(hostile, hostile) } : it).ToList();
        var issue = sample with { Items = items, Title = new LocalizedText("<b>bold</b> 제목", "<b>bold</b> title") };

        var message = await TestMail.MessageAsync(Language.Both, name: hostile, issue: issue);
        var doc = Parser.ParseDocument(message.HtmlBody!);

        Assert.Empty(doc.QuerySelectorAll("script"));
        Assert.Empty(doc.QuerySelectorAll("img"));
        Assert.Empty(doc.QuerySelectorAll("h1 b"));
        Assert.Contains(hostile, doc.Body!.TextContent);
        Assert.Contains("<b>bold</b> title", doc.Body.TextContent);
    }

    [Fact]
    public async Task Templates_are_compiled_once_and_rendering_again_never_reads_them()
    {
        var copy = NewsletterProcess.TempDirectory();
        CopyDirectory(Repository.PathOf("templates"), copy);
        var options = TestMail.Options(copy);
        var renderer = TestMail.Renderer(options);
        var first = await renderer.RenderAsync([TestMail.SampleIssue()], Language.En);

        Directory.Delete(Path.Combine(copy, "email"), recursive: true);
        var second = await renderer.RenderAsync([TestMail.SampleIssue("another-slug")], Language.En);

        Assert.Contains("another-slug", second.Personalize(new Recipient(null, "u", "p")).Html);
        Assert.Equal(first.Subject, second.Subject);
    }

    [Fact]
    public async Task An_operator_can_restyle_mail_with_a_copy_of_the_templates()
    {
        var copy = NewsletterProcess.TempDirectory();
        CopyDirectory(Repository.PathOf("templates"), copy);
        var footer = Path.Combine(copy, "email", "_Footer.cshtml");
        File.WriteAllText(footer, File.ReadAllText(footer).Replace("<td class=\"footer\">", "<td class=\"footer\"><p>우리 모임 주소: 서울</p>"));

        var digest = await TestMail.Renderer(TestMail.Options(copy)).RenderAsync([TestMail.SampleIssue()], Language.Ko);

        Assert.Contains("우리 모임 주소: 서울", digest.Personalize(new Recipient(null, "u", "p")).Html);
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(dir.Replace(from, to));
        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, file.Replace(from, to), overwrite: true);
    }
}
