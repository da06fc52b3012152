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
public sealed class DigestRenderer(TemplateEngine templates, IOptions<NewsletterOptions> options, IOptions<TrackingOptions>? tracking = null)
{
    public const string HtmlTemplate = "email/Digest";

    /// <summary>
    /// Renders the shared part of a digest of <paramref name="issues"/> (oldest first) for readers of
    /// <paramref name="language"/>; with <paramref name="tracked"/> (and click tracking on), every
    /// paper link is a per-reader tracked link and the footer says so.
    /// </summary>
    public async Task<DigestTemplate> RenderAsync(IReadOnlyList<Issue> issues, Language language, bool tracked = false)
    {
        if (issues.Count == 0) throw new ArgumentException("A digest needs at least one issue", nameof(issues));
        var view = CreateView(issues, language, tracked && TracksClicks ? tracking!.Value.Mode : ClickTrackingMode.Off);
        var rendered = await templates.RenderAsync(HtmlTemplate, view);
        // Mail clients drop <style> blocks: inline every rule, keep only the media queries
        // (mobile and dark mode) in a <style> for the clients that honour them.
        var inlined = PreMailer.Net.PreMailer.MoveCssInline(rendered, removeStyleElements: true, removeComments: true, preserveMediaQueries: true);
        var text = PlainTextDigest.Write(view);
        return new DigestTemplate(view.Subject, view.Preheader, language, inlined.Html, text, view.Personal, view.TrackedLinks) { CssWarnings = inlined.Warnings };
    }

    /// <summary>Click tracking is on: a reader who allows it gets tracked links.</summary>
    public bool TracksClicks => (tracking?.Value.Mode ?? ClickTrackingMode.Off) != ClickTrackingMode.Off;

    internal DigestView CreateView(IReadOnlyList<Issue> issues, Language language, ClickTrackingMode tracking = ClickTrackingMode.Off)
    {
        var publicUrl = options.Value.PublicUrl.TrimEnd('/');
        var name = NewsletterName(options.Value);
        var langs = language == Language.Both ? new[] { "ko", "en" } : [language == Language.En ? "en" : "ko"];
        var personal = new PersonalMarkers();
        var tracked = new List<LinkPlace>();
        var views = issues.Select(issue => new IssueView(
            issue.Id,
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
                item.Links)
            {
                Hrefs = tracking == ClickTrackingMode.Off
                    ? item.Links.Select(l => l.Url).ToList()
                    : item.Links.Select((_, l) => { tracked.Add(new LinkPlace(issue.Id, i, l)); return personal.Link(tracked.Count - 1); }).ToList(),
            }).ToList())).ToList();

        return new DigestView
        {
            Language = language,
            Subject = Subject(issues, language),
            Preheader = Preheader(issues, language),
            NewsletterName = name,
            Issues = views,
            Footers = langs.Select(l => (l, DigestStrings.For(l))).ToList(),
            Personal = personal,
            TrackedLinks = tracked,
            ClicksNotice = tracking switch
            {
                ClickTrackingMode.Aggregate => langs.Select(l => DigestStrings.For(l).ClicksCounted).ToList(),
                ClickTrackingMode.PerSubscriber => langs.Select(l => DigestStrings.For(l).ClicksRecorded).ToList(),
                _ => [],
            },
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

    public static string? FormatPeriod(Issue issue) => issue is { PeriodFrom: { } from, PeriodTo: { } to }
        ? $"{from.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)} ~ {to.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}"
        : null;
}

/// <summary>The per-subscriber values of one message.</summary>
/// <param name="LinkUrl">The tracked URL of the digest's k-th tracked link (see <see cref="DigestTemplate.TrackedLinks"/>); null when the digest has none.</param>
public sealed record Recipient(string? Name, string UnsubscribeUrl, string PreferencesUrl, Func<int, string>? LinkUrl = null);

/// <summary>
/// One personalised digest: the HTML and the plain-text body as UTF-8, each a run of segments
/// (mostly shared with every other subscriber, a few personal) read through a stream without
/// copying the shared bytes.
/// </summary>
public readonly record struct PersonalizedDigest(ReadOnlyMemory<byte>[] HtmlUtf8, ReadOnlyMemory<byte>[] TextUtf8)
{
    public string Html => Join(HtmlUtf8);

    public string Text => Join(TextUtf8);

    private static string Join(ReadOnlyMemory<byte>[] segments)
    {
        using var stream = new SegmentStream(segments);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}

/// <summary>
/// A digest rendered once for a (content, language) pair, split at the personal markers and kept
/// as UTF-8, so personalising one message is a single pass of byte copies into an array of the
/// exact size.
/// </summary>
public sealed class DigestTemplate
{
    // Encodes markup characters but leaves Hangul and other letters as they are.
    internal static readonly HtmlEncoder Html = HtmlEncoder.Create(System.Text.Unicode.UnicodeRanges.All);

    private readonly DigestSegment[] _html;
    private readonly DigestSegment[] _text;
    private readonly DigestBody _body;

    public DigestTemplate(string subject, string preheader, Language language, string html, string text, PersonalMarkers markers,
        IReadOnlyList<LinkPlace>? trackedLinks = null)
    {
        TrackedLinks = trackedLinks ?? [];
        Subject = subject;
        Preheader = preheader;
        Language = language;
        _html = Split(html, markers);
        _text = Split(text, markers);
        HtmlEncoding = BestEncoding(html);
        TextEncoding = BestEncoding(text);
        _body = new DigestBody(_text, TextEncoding, _html, HtmlEncoding);
    }

    public string Subject { get; }

    /// <summary>The links that go through <c>/r/{token}</c>, in the order of their markers; empty when the digest is not tracked.</summary>
    public IReadOnlyList<LinkPlace> TrackedLinks { get; }

    /// <summary>The Subject header, RFC 2047-encoded once; messages take a clone.</summary>
    public MimeKit.Header SubjectHeader => _subjectHeader ??= new MimeKit.Header(MimeKit.HeaderId.Subject, Subject);

    private MimeKit.Header? _subjectHeader;

    public string Preheader { get; }

    public Language Language { get; }

    /// <summary>What the CSS inliner could not apply (empty when the templates are sound).</summary>
    public IReadOnlyList<string> CssWarnings { get; init; } = [];

    /// <summary>
    /// The 7-bit transfer encoding for the HTML part, chosen once for every subscriber: the
    /// personal values change a few hundred characters of tens of thousands, never the choice.
    /// </summary>
    public MimeKit.ContentEncoding HtmlEncoding { get; }

    /// <summary>The 7-bit transfer encoding for the text part (see <see cref="HtmlEncoding"/>).</summary>
    public MimeKit.ContentEncoding TextEncoding { get; }

    /// <summary>The MIME body (multipart/alternative) for one reader, encoded for the wire.</summary>
    public EncodedBody Encode(Recipient recipient) => _body.Encode(new PersonalValues(recipient));

    public PersonalizedDigest Personalize(Recipient recipient)
    {
        var values = new PersonalValues(recipient);
        return new PersonalizedDigest(Fill(_html, values, html: true), Fill(_text, values, html: false));
    }

    private static ReadOnlyMemory<byte>[] Fill(DigestSegment[] segments, PersonalValues values, bool html)
    {
        var result = new ReadOnlyMemory<byte>[segments.Length];
        for (var i = 0; i < segments.Length; i++)
            result[i] = segments[i].Value is { } value ? values.Get(value, html, segments[i].Index) : segments[i].Utf8;
        return result;
    }

    internal static string Greeting(DigestStrings strings, string? name) =>
        string.IsNullOrEmpty(name) ? strings.GreetingAnonymous : string.Format(CultureInfo.InvariantCulture, strings.Greeting, name);

    // Quoted-printable writes each 8-bit byte as three characters, base64 every byte as 4/3:
    // base64 wins once more than about a sixth of the UTF-8 bytes are 8-bit (Korean text).
    private static MimeKit.ContentEncoding BestEncoding(string content)
    {
        var bytes = Encoding.UTF8.GetBytes(content);
        var high = bytes.Count(b => b >= 0x80);
        return high * 6 > bytes.Length ? MimeKit.ContentEncoding.Base64 : MimeKit.ContentEncoding.QuotedPrintable;
    }

    /// <summary>Splits the rendering at this rendering's own markers, and only at them.</summary>
    private static DigestSegment[] Split(string rendered, PersonalMarkers markers)
    {
        var segments = new List<DigestSegment>();
        var start = 0;
        var from = 0;
        while (true)
        {
            var open = rendered.IndexOf(markers.Prefix, from, StringComparison.Ordinal);
            if (open < 0) break;
            var found = false;
            foreach (var (marker, value, index) in markers.All)
            {
                if (string.CompareOrdinal(rendered, open, marker, 0, marker.Length) != 0) continue;
                if (open > start) segments.Add(new DigestSegment(Encoding.UTF8.GetBytes(rendered[start..open]), null));
                segments.Add(new DigestSegment([], value, index));
                start = from = open + marker.Length;
                found = true;
                break;
            }
            if (!found) from = open + markers.Prefix.Length;
        }
        if (start < rendered.Length) segments.Add(new DigestSegment(Encoding.UTF8.GetBytes(rendered[start..]), null));
        return segments.ToArray();
    }

}

/// <summary>Each personal value encoded once per message, for HTML and for text.</summary>
internal sealed class PersonalValues(Recipient recipient)
{
    private readonly Dictionary<(PersonalValue, bool, int), byte[]> _cache = new(8);
    private readonly Dictionary<int, string> _links = new();

    public byte[] Get(PersonalValue which, bool html, int index = 0)
    {
        if (_cache.TryGetValue((which, html, index), out var bytes)) return bytes;
        var value = which switch
        {
            PersonalValue.TrackedLink => LinkUrl(index),
            PersonalValue.UnsubscribeUrl => recipient.UnsubscribeUrl,
            PersonalValue.PreferencesUrl => recipient.PreferencesUrl,
            PersonalValue.GreetingKo => DigestTemplate.Greeting(DigestStrings.Korean, recipient.Name),
            _ => DigestTemplate.Greeting(DigestStrings.English, recipient.Name),
        };
        bytes = Encoding.UTF8.GetBytes(html ? DigestTemplate.Html.Encode(value) : value);
        _cache[(which, html, index)] = bytes;
        return bytes;
    }

    // Made once per link, whichever part (HTML or text) asks first.
    private string LinkUrl(int index)
    {
        if (_links.TryGetValue(index, out var url)) return url;
        url = recipient.LinkUrl?.Invoke(index) ?? throw new InvalidOperationException("A tracked digest needs the reader's link URLs");
        _links[index] = url;
        return url;
    }
}

/// <summary>A read-only, seekable stream over a run of byte segments, read in place.</summary>
public sealed class SegmentStream : Stream
{
    private readonly ReadOnlyMemory<byte>[] _segments;
    private readonly long _length;
    private long _position;
    private int _segment;
    private int _offset;

    public SegmentStream(ReadOnlyMemory<byte>[] segments)
    {
        _segments = segments;
        foreach (var s in segments) _length += s.Length;
    }

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => _length;

    public override long Position
    {
        get => _position;
        set => Seek(value, SeekOrigin.Begin);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var read = 0;
        while (read < buffer.Length && _segment < _segments.Length)
        {
            var current = _segments[_segment].Span[_offset..];
            var n = Math.Min(current.Length, buffer.Length - read);
            current[..n].CopyTo(buffer[read..]);
            read += n;
            _offset += n;
            if (_offset == _segments[_segment].Length) { _segment++; _offset = 0; }
        }
        _position += read;
        return read;
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        var target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => _length + offset,
        };
        if (target < 0 || target > _length) throw new ArgumentOutOfRangeException(nameof(offset));
        _position = target;
        _segment = 0;
        _offset = 0;
        var remaining = target;
        while (_segment < _segments.Length && remaining >= _segments[_segment].Length)
        {
            remaining -= _segments[_segment].Length;
            _segment++;
        }
        _offset = (int)remaining;
        return _position;
    }

    public override void Flush() { }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
