using System.Globalization;
using System.Text;

namespace Newsletter.Validation;

/// <summary>
/// The rules every stored text obeys, whichever way it came in (API, pages, CSV, CLI): a size
/// limit; valid Unicode (no unpaired surrogate, no non-character such as U+FFFF), so every stored
/// text can be written as XML and UTF-8; no control characters, so nothing reaches a header;
/// no bidirectional overrides or isolates and no zero-width spaces, so no text can disguise itself;
/// and a required text must hold something visible.
/// </summary>
public static class TextRules
{
    public const int MaxNameLength = 100;
    public const int MaxTitleLength = 300;
    public const int MaxSummaryLength = 4_000;
    public const int MaxLongTextLength = 10_000;
    public const int MaxUrlLength = 2_048;
    public const int MaxSearchLength = 254;

    /// <summary>A single-line value (name, title, label): no control characters at all, including U+2028/U+2029.</summary>
    public static string SingleLine(string field, string? value, int maxLength, bool required = true)
    {
        Check(field, value, allowLineBreaks: false);
        var text = value?.Trim();
        if (string.IsNullOrEmpty(text) || !HasVisibleCharacter(text))
        {
            if (required) throw new InputException(field, "is required and must not be empty", InputRule.Required);
            if (!string.IsNullOrEmpty(text)) throw new InputException(field, "must hold a visible character or be left empty", InputRule.InvisibleCharacter);
            return "";
        }
        if (text.Length > maxLength)
            throw new InputException(field, $"must be at most {maxLength} characters (got {text.Length})", InputRule.TooLong, maxLength);
        return text;
    }

    /// <summary>A multi-line value (intro, summary, abstract): line breaks (CRLF, CR and LF, stored as LF) and tabs are allowed, other control characters are not.</summary>
    public static string MultiLine(string field, string? value, int maxLength)
    {
        var text = value?.Replace("\r\n", "\n").Replace('\r', '\n');
        Check(field, text, allowLineBreaks: true);
        text = text?.Trim();
        if (string.IsNullOrEmpty(text) || !HasVisibleCharacter(text))
            throw new InputException(field, "must not be empty", InputRule.Required);
        if (text.Length > maxLength)
            throw new InputException(field, $"must be at most {maxLength} characters (got {text.Length})", InputRule.TooLong, maxLength);
        return text;
    }

    /// <summary>A search text (the admin's <c>q=</c>): optional, one line, the same characters as any stored text.</summary>
    public static string? Search(string field, string? value)
    {
        if (string.IsNullOrEmpty(value)) return null;
        Check(field, value, allowLineBreaks: false);
        if (value.Length > MaxSearchLength)
            throw new InputException(field, $"must be at most {MaxSearchLength} characters", InputRule.TooLong, MaxSearchLength);
        return value;
    }

    /// <summary>An absolute http or https URL.</summary>
    public static string HttpUrl(string field, string? value)
    {
        var text = value?.Trim();
        if (string.IsNullOrEmpty(text))
            throw new InputException(field, "is required", InputRule.Required);
        if (text.Length > MaxUrlLength)
            throw new InputException(field, $"must be at most {MaxUrlLength} characters", InputRule.TooLong, MaxUrlLength);
        Check(field, text, allowLineBreaks: false);
        foreach (var c in text)
            if (char.IsWhiteSpace(c))
                throw new InputException(field, "must not contain spaces or control characters", InputRule.ControlCharacter);
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || string.IsNullOrEmpty(uri.Host))
            throw new InputException(field, $"must be an absolute http or https URL (got '{Shorten(text)}')");
        return text;
    }

    /// <summary>Throws when <paramref name="value"/> holds a character no stored text may hold; names the character.</summary>
    public static void Check(string field, string? value, bool allowLineBreaks)
    {
        if (value is null) return;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsSurrogate(c))
            {
                if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                {
                    var scalar = char.ConvertToUtf32(c, value[i + 1]);
                    if (IsNonCharacter(scalar))
                        throw new InputException(field, $"must not contain the non-character U+{scalar:X4}", InputRule.NotUnicode);
                    i++;
                    continue;
                }
                throw new InputException(field, $"must be valid Unicode text (found an unpaired surrogate U+{(int)c:X4})", InputRule.NotUnicode);
            }
            if (IsNonCharacter(c))
                throw new InputException(field, $"must not contain the non-character U+{(int)c:X4}", InputRule.NotUnicode);
            if ((char.IsControl(c) && !(allowLineBreaks && c is '\n' or '\t')) || c is '\u2028' or '\u2029')
                throw new InputException(field, $"must not contain control characters (found U+{(int)c:X4})", InputRule.ControlCharacter);
            if (IsDisguising(c))
                throw new InputException(field, $"must not contain invisible or direction-changing characters (found U+{(int)c:X4})", InputRule.InvisibleCharacter);
        }
    }

    /// <summary>Unicode non-characters: U+FDD0..U+FDEF and the last two code points of every plane. XML forbids U+FFFE and U+FFFF.</summary>
    private static bool IsNonCharacter(int scalar) => scalar is >= 0xFDD0 and <= 0xFDEF || (scalar & 0xFFFE) == 0xFFFE;

    /// <summary>
    /// Characters that make text read other than it is: bidirectional embeddings, overrides and
    /// isolates (U+202A..U+202E, U+2066..U+2069), and zero-width spaces (U+200B, U+2060, U+FEFF,
    /// U+180E). The marks U+200E/U+200F/U+061C and the joiners U+200C/U+200D stay allowed: real
    /// Arabic, Hebrew, Persian and emoji text needs them.
    /// </summary>
    private static bool IsDisguising(char c) => c is >= '\u202A' and <= '\u202E' or >= '\u2066' and <= '\u2069'
        or '\u200B' or '\u2060' or '\uFEFF' or '\u180E';

    /// <summary>True when the text has a character one can see: not only spaces, marks, joiners or other format characters.</summary>
    private static bool HasVisibleCharacter(string text)
    {
        foreach (var rune in text.EnumerateRunes())
        {
            var category = Rune.GetUnicodeCategory(rune);
            if (!Rune.IsWhiteSpace(rune) && category is not (UnicodeCategory.Format or UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Control))
                return true;
        }
        return false;
    }

    /// <summary>The text with every character XML 1.0 cannot hold left out (for text stored before these rules).</summary>
    public static string XmlSafe(string text)
    {
        var firstBad = -1;
        for (var i = 0; i < text.Length; i++)
        {
            if (System.Xml.XmlConvert.IsXmlChar(text[i])) continue;
            if (i + 1 < text.Length && System.Xml.XmlConvert.IsXmlSurrogatePair(text[i + 1], text[i])) { i++; continue; }
            firstBad = i;
            break;
        }
        if (firstBad < 0) return text;
        var sb = new StringBuilder(text.Length);
        sb.Append(text, 0, firstBad);
        for (var i = firstBad; i < text.Length; i++)
        {
            if (System.Xml.XmlConvert.IsXmlChar(text[i])) sb.Append(text[i]);
            else if (i + 1 < text.Length && System.Xml.XmlConvert.IsXmlSurrogatePair(text[i + 1], text[i])) { sb.Append(text[i]).Append(text[i + 1]); i++; }
        }
        return sb.ToString();
    }

    internal static string Shorten(string text)
    {
        var shown = text.Length <= 60 ? text : text[..57] + "...";
        // An error message repeats the value: never with a character that could break where it is shown.
        var sb = new StringBuilder(shown.Length);
        for (var i = 0; i < shown.Length; i++)
        {
            var c = shown[i];
            if (char.IsHighSurrogate(c) && i + 1 < shown.Length && char.IsLowSurrogate(shown[i + 1])) { sb.Append(c).Append(shown[++i]); continue; }
            sb.Append(char.IsControl(c) || char.IsSurrogate(c) || IsNonCharacter(c) || IsDisguising(c) ? '\uFFFD' : c);
        }
        return sb.ToString();
    }
}
