using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Newsletter.Validation;

namespace Newsletter.Issues;

/// <summary>
/// The issue import format (JSON), parsed strictly: unknown fields, wrong types, missing required
/// fields, non-http(s) links, oversize text and control characters are each rejected with the JSON
/// path of the field and the rule it breaks. See the README for the format.
/// </summary>
public sealed partial record IssueDocument(
    string Slug,
    LocalizedText Title,
    LocalizedText? Intro,
    DateOnly? PeriodFrom,
    DateOnly? PeriodTo,
    IReadOnlyList<IssueItem> Items)
{
    public const int MaxItems = 50;
    public const int MaxLinksPerItem = 10;
    public const int MaxDocumentBytes = 1_000_000;

    /// <exception cref="InputException">The document breaks a rule; nothing should be written.</exception>
    public static IssueDocument Parse(string json)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(json) > MaxDocumentBytes)
            throw new InputException("$", $"an issue file must be at most {MaxDocumentBytes} bytes");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new InputException("$", $"is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})");
        }
        using (document)
            return FromJson(document.RootElement);
    }

    public static async Task<IssueDocument> ParseFileAsync(string path, CancellationToken ct = default)
    {
        if (!File.Exists(path)) throw new InputException("FILE", $"'{path}' does not exist");
        if (new FileInfo(path).Length > MaxDocumentBytes)
            throw new InputException("$", $"an issue file must be at most {MaxDocumentBytes} bytes");
        return Parse(JsonText.Decode(await File.ReadAllBytesAsync(path, ct)));
    }

    private static IssueDocument FromJson(JsonElement root)
    {
        var obj = new JsonObjectReader(root, "$");
        obj.AllowOnly("slug", "title", "period", "intro", "items");

        var slug = obj.RequiredString("slug");
        if (!SlugPattern().IsMatch(slug))
            throw new InputException("slug", "must be 1-100 characters of lower-case letters, digits and '-', starting with a letter or digit");

        var title = obj.RequiredLocalized("title", TextRules.MaxTitleLength, singleLine: true);
        var intro = obj.OptionalLocalized("intro", TextRules.MaxLongTextLength, singleLine: false);

        DateOnly? from = null, to = null;
        if (obj.Optional("period") is { } period)
        {
            var p = new JsonObjectReader(period, "period");
            p.AllowOnly("from", "to");
            from = p.RequiredDate("from");
            to = p.RequiredDate("to");
            if (from > to) throw new InputException("period.to", "must not be before period.from");
        }

        var itemsElement = obj.Required("items");
        if (itemsElement.ValueKind != JsonValueKind.Array)
            throw new InputException("items", "must be an array");
        var count = itemsElement.GetArrayLength();
        if (count is 0 or > MaxItems)
            throw new InputException("items", $"must hold between 1 and {MaxItems} items (got {count})");
        var items = itemsElement.EnumerateArray().Select((e, i) => ParseItem(e, $"items[{i}]")).ToList();
        return new IssueDocument(slug, title, intro, from, to, items);
    }

    private static IssueItem ParseItem(JsonElement element, string path)
    {
        var item = new JsonObjectReader(element, path);
        item.AllowOnly("title", "summary", "abstract", "links");
        var title = item.RequiredLocalized("title", TextRules.MaxTitleLength, singleLine: true);
        var summary = item.RequiredLocalized("summary", TextRules.MaxSummaryLength, singleLine: false);
        var @abstract = item.OptionalLocalized("abstract", TextRules.MaxLongTextLength, singleLine: false);

        var linksElement = item.Required("links");
        if (linksElement.ValueKind != JsonValueKind.Array)
            throw new InputException($"{path}.links", "must be an array");
        var linkCount = linksElement.GetArrayLength();
        if (linkCount is 0 or > MaxLinksPerItem)
            throw new InputException($"{path}.links", $"must hold between 1 and {MaxLinksPerItem} links (got {linkCount})");
        var links = linksElement.EnumerateArray().Select((e, i) =>
        {
            var link = new JsonObjectReader(e, $"{path}.links[{i}]");
            link.AllowOnly("label", "url");
            var label = TextRules.SingleLine(link.Field("label"), link.RequiredString("label"), 50);
            var url = TextRules.HttpUrl(link.Field("url"), link.RequiredString("url"));
            return new IssueLink(label, url);
        }).ToList();
        return new IssueItem(title, summary, @abstract, links);
    }

    // \z, not $: in .NET '$' also matches before a final line feed.
    [GeneratedRegex(@"\A[a-z0-9][a-z0-9-]{0,99}\z")]
    private static partial Regex SlugPattern();

    /// <summary>True when <paramref name="text"/> is a well-formed slug (the one rule for every entry point).</summary>
    public static bool IsSlug(string? text) => text is not null && SlugPattern().IsMatch(text);

    /// <summary>Reads one JSON object and reports every problem with its path.</summary>
    private readonly struct JsonObjectReader
    {
        private readonly JsonElement _element;
        private readonly string _path;

        public JsonObjectReader(JsonElement element, string path)
        {
            if (element.ValueKind != JsonValueKind.Object)
                throw new InputException(path, "must be a JSON object");
            _element = element;
            _path = path;
        }

        public string Field(string name) => _path == "$" ? name : $"{_path}.{name}";

        public void AllowOnly(params string[] names)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in _element.EnumerateObject())
            {
                var name = JsonText.Name(property, _path);
                if (!names.Contains(name, StringComparer.Ordinal))
                    throw new InputException(Field(TextRules.Shorten(name)), $"is not a known field (allowed: {string.Join(", ", names)})");
                if (!seen.Add(name))
                    throw new InputException(Field(name), "appears twice");
            }
        }

        public JsonElement? Optional(string name) =>
            _element.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

        public JsonElement Required(string name) =>
            Optional(name) ?? throw new InputException(Field(name), "is required");

        public string RequiredString(string name)
        {
            var value = Required(name);
            return JsonText.GetString(value, Field(name));
        }

        public DateOnly RequiredDate(string name)
        {
            var text = RequiredString(name);
            return DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)
                ? date
                : throw new InputException(Field(name), $"must be a date like 2024-04-22 (got '{TextRules.Shorten(text)}')");
        }

        public LocalizedText RequiredLocalized(string name, int maxLength, bool singleLine) =>
            OptionalLocalized(name, maxLength, singleLine) ?? throw new InputException(Field(name), "is required");

        public LocalizedText? OptionalLocalized(string name, int maxLength, bool singleLine)
        {
            if (Optional(name) is not { } value) return null;
            var text = new JsonObjectReader(value, Field(name));
            text.AllowOnly("ko", "en");
            string? Read(string lang)
            {
                if (text.Optional(lang) is not { } v) return null;
                var raw = JsonText.GetString(v, text.Field(lang));
                return singleLine
                    ? TextRules.SingleLine(text.Field(lang), raw, maxLength)
                    : TextRules.MultiLine(text.Field(lang), raw, maxLength);
            }
            var ko = Read("ko");
            var en = Read("en");
            if (ko is null && en is null)
                throw new InputException(Field(name), "must have a 'ko' or an 'en' text (or both)");
            return new LocalizedText(ko, en);
        }
    }
}
