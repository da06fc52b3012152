namespace Newsletter.Validation;

/// <summary>Rules every stored text obeys: a size limit, and no control characters that could end up in a header.</summary>
public static class TextRules
{
    public const int MaxNameLength = 100;
    public const int MaxTitleLength = 300;
    public const int MaxSummaryLength = 4_000;
    public const int MaxLongTextLength = 10_000;
    public const int MaxUrlLength = 2_048;

    /// <summary>A single-line value (name, title, label): no control characters at all, including U+2028/U+2029.</summary>
    public static string SingleLine(string field, string? value, int maxLength, bool required = true)
    {
        RejectControlCharacters(field, value, allowLineBreaks: false);
        var text = value?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            if (required) throw new InputException(field, "is required and must not be empty");
            return "";
        }
        if (text.Length > maxLength)
            throw new InputException(field, $"must be at most {maxLength} characters (got {text.Length})");
        return text;
    }

    /// <summary>A multi-line value (intro, summary, abstract): line breaks and tabs are allowed, other control characters are not.</summary>
    public static string MultiLine(string field, string? value, int maxLength)
    {
        var text = value?.Replace("\r\n", "\n");
        RejectControlCharacters(field, text, allowLineBreaks: true);
        text = text?.Trim();
        if (string.IsNullOrEmpty(text))
            throw new InputException(field, "must not be empty");
        if (text.Length > maxLength)
            throw new InputException(field, $"must be at most {maxLength} characters (got {text.Length})");
        return text;
    }

    /// <summary>An absolute http or https URL.</summary>
    public static string HttpUrl(string field, string? value)
    {
        var text = value?.Trim();
        if (string.IsNullOrEmpty(text))
            throw new InputException(field, "is required");
        if (text.Length > MaxUrlLength)
            throw new InputException(field, $"must be at most {MaxUrlLength} characters");
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || string.IsNullOrEmpty(uri.Host))
            throw new InputException(field, $"must be an absolute http or https URL (got '{Shorten(text)}')");
        foreach (var c in text)
            if (char.IsControl(c) || char.IsWhiteSpace(c))
                throw new InputException(field, "must not contain spaces or control characters");
        return text;
    }

    private static void RejectControlCharacters(string field, string? value, bool allowLineBreaks)
    {
        if (value is null) return;
        foreach (var c in value)
            if ((char.IsControl(c) && !(allowLineBreaks && c is '\n' or '\t')) || c is '\u2028' or '\u2029')
                throw new InputException(field, $"must not contain control characters (found U+{(int)c:X4})");
    }

    internal static string Shorten(string text) => text.Length <= 60 ? text : text[..57] + "...";
}
