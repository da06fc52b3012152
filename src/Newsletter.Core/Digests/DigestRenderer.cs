using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Issues;
using Newsletter.Subscribers;

namespace Newsletter.Digests;

/// <summary>
/// Renders a digest (one or more issues) for one language: the HTML through the RazorLight
/// templates, and the plain text from the same view model. The result is a
/// <see cref="DigestTemplate"/> that is personalised per subscriber by filling in the greeting and
/// the signed links, without rendering again.
/// </summary>
public sealed class DigestRenderer(TemplateEngine templates, IOptions<NewsletterOptions> options)
{
    public const string HtmlTemplate = "email/Digest";

    /// <summary>Renders the shared part of a digest of <paramref name="issues"/> (oldest first) for readers of <paramref name="language"/>.</summary>
    public async Task<DigestTemplate> RenderAsync(IReadOnlyList<Issue> issues, Language language)
    {
        if (issues.Count == 0) throw new ArgumentException("A digest needs at least one issue", nameof(issues));
        var view = CreateView(issues, language);
        var rendered = await templates.RenderAsync(HtmlTemplate, view);
        // Mail clients drop <style> blocks: inline every rule, keep only the media queries
        // (mobile and dark mode) in a <style> for the clients that honour them.
        var inlined = PreMailer.Net.PreMailer.MoveCssInline(rendered, removeStyleElements: true, removeComments: true, preserveMediaQueries: true);
        var text = PlainTextDigest.Write(view);
        return new DigestTemplate(view.Subject, view.Preheader, language, inlined.Html, text) { CssWarnings = inlined.Warnings };
    }

    internal DigestView CreateView(IReadOnlyList<Issue> issues, Language language)
    {
        var publicUrl = options.Value.PublicUrl.TrimEnd('/');
        var name = NewsletterName(options.Value);
        var langs = language == Language.Both ? new[] { "ko", "en" } : [language == Language.En ? "en" : "ko"];
        var views = issues.Select(issue => new IssueView(
            issue.Slug,
            issue.Title.Versions(language).ToList(),
            issue.Intro?.Versions(language).ToList() ?? [],
            FormatPeriod(issue),
            $"{publicUrl}/issues/{Uri.EscapeDataString(issue.Slug)}",
            issue.Items.Select((item, i) => new ItemView(
                i + 1,
                item.Title.Versions(language).ToList(),
                item.Summary.Versions(language).ToList(),
                item.Abstract?.Versions(language).ToList() ?? [],
                item.Links)).ToList())).ToList();

        return new DigestView
        {
            Language = language,
            Subject = Subject(issues, language),
            Preheader = Preheader(issues, language),
            NewsletterName = name,
            Issues = views,
            Footers = langs.Select(l => (l, DigestStrings.For(l))).ToList(),
        };
    }

    public static string NewsletterName(NewsletterOptions options) =>
        options.FromMailbox.Name is { Length: > 0 } display ? display : "Newsletter";

    private static string Subject(IReadOnlyList<Issue> issues, Language language)
    {
        var latest = issues[^1];
        var title = language == Language.Both && latest.Title is { Ko: { } ko, En: { } en } && ko != en
            ? $"{ko} / {en}"
            : latest.Title.For(language);
        if (issues.Count == 1) return title;
        var more = issues.Count - 1;
        return language == Language.En ? $"{title} (+{more} more)" : $"{title} (외 {more}건)";
    }

    /// <summary>About 90 characters that say what is inside: the first paper titles.</summary>
    private static string Preheader(IReadOnlyList<Issue> issues, Language language)
    {
        var items = issues.SelectMany(i => i.Items).ToList();
        var english = language == Language.En;
        var sb = new StringBuilder(english ? "This issue: " : "이번 호: ");
        var shown = 0;
        foreach (var item in items)
        {
            var title = ShortTitle(item.Title.For(language));
            if (shown > 0 && sb.Length + title.Length + 2 > 90) break;
            if (shown > 0) sb.Append(", ");
            sb.Append(title);
            shown++;
        }
        if (shown < items.Count)
            sb.Append(english ? $" and {items.Count - shown} more" : $" 외 {items.Count - shown}편");
        return sb.ToString();
    }

    // "Phi-3 기술 보고서: 휴대전화의 ..." reads as "Phi-3 기술 보고서" in a preview line.
    private static string ShortTitle(string title)
    {
        var colon = title.IndexOf(':');
        var shortTitle = colon > 0 ? title[..colon] : title;
        return shortTitle.Length > 40 ? shortTitle[..39] + "…" : shortTitle;
    }

    private static string? FormatPeriod(Issue issue) => issue is { PeriodFrom: { } from, PeriodTo: { } to }
        ? $"{from.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)} ~ {to.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}"
        : null;
}

/// <summary>The per-subscriber values of one message.</summary>
public sealed record Recipient(string? Name, string UnsubscribeUrl, string PreferencesUrl);

/// <summary>One personalised digest: the HTML and the plain-text body.</summary>
public readonly record struct PersonalizedDigest(string Html, string Text);

/// <summary>
/// A digest rendered once for a (content, language) pair, split at the personal markers so that
/// personalising costs one pass of string concatenation.
/// </summary>
public sealed class DigestTemplate
{
    private readonly Segment[] _html;
    private readonly Segment[] _text;
    private readonly int _htmlLength;
    private readonly int _textLength;

    public DigestTemplate(string subject, string preheader, Language language, string html, string text)
    {
        Subject = subject;
        Preheader = preheader;
        Language = language;
        _html = Split(html);
        _text = Split(text);
        _htmlLength = html.Length + 512;
        _textLength = text.Length + 512;
    }

    public string Subject { get; }

    public string Preheader { get; }

    public Language Language { get; }

    /// <summary>What the CSS inliner could not apply (empty when the templates are sound).</summary>
    public IReadOnlyList<string> CssWarnings { get; init; } = [];

    public PersonalizedDigest Personalize(Recipient recipient) => new(
        Fill(_html, _htmlLength, recipient, html: true),
        Fill(_text, _textLength, recipient, html: false));

    private static string Fill(Segment[] segments, int capacity, Recipient r, bool html)
    {
        var sb = new StringBuilder(capacity);
        foreach (var segment in segments)
        {
            var value = segment.Marker switch
            {
                null => segment.Text,
                PersonalMarkers.UnsubscribeUrl => r.UnsubscribeUrl,
                PersonalMarkers.PreferencesUrl => r.PreferencesUrl,
                PersonalMarkers.GreetingKo => Greeting(DigestStrings.Korean, r.Name),
                PersonalMarkers.GreetingEn => Greeting(DigestStrings.English, r.Name),
                _ => throw new InvalidOperationException($"Unknown marker {segment.Marker}"),
            };
            sb.Append(html && segment.Marker is not null ? Html.Encode(value) : value);
        }
        return sb.ToString();
    }

    // Encodes markup characters but leaves Hangul and other letters as they are.
    private static readonly HtmlEncoder Html = HtmlEncoder.Create(System.Text.Unicode.UnicodeRanges.All);

    private static string Greeting(DigestStrings strings, string? name) =>
        string.IsNullOrEmpty(name) ? strings.GreetingAnonymous : string.Format(CultureInfo.InvariantCulture, strings.Greeting, name);

    private static Segment[] Split(string rendered)
    {
        var segments = new List<Segment>();
        var start = 0;
        while (true)
        {
            var open = rendered.IndexOf(PersonalMarkers.Prefix, start, StringComparison.Ordinal);
            if (open < 0) break;
            var close = rendered.IndexOf(PersonalMarkers.Suffix, open + PersonalMarkers.Prefix.Length, StringComparison.Ordinal);
            if (close < 0) break;
            if (open > start) segments.Add(new Segment(rendered[start..open], null));
            segments.Add(new Segment("", rendered[open..(close + PersonalMarkers.Suffix.Length)]));
            start = close + PersonalMarkers.Suffix.Length;
        }
        if (start < rendered.Length) segments.Add(new Segment(rendered[start..], null));
        return segments.ToArray();
    }

    private readonly record struct Segment(string Text, string? Marker);
}
