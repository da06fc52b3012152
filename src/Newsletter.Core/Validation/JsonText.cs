using System.Text;
using System.Text.Json;

namespace Newsletter.Validation;

/// <summary>
/// The one way JSON input (request bodies, issue files) is read: strict UTF-8 (a byte that is not
/// UTF-8 is refused, not replaced), one value per name, and strings that are valid Unicode.
/// </summary>
public static class JsonText
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Decodes UTF-8 bytes (a leading byte order mark is skipped), refusing anything else.</summary>
    public static string Decode(ReadOnlySpan<byte> utf8)
    {
        if (utf8.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) utf8 = utf8[3..];
        try
        {
            return Strict.GetString(utf8);
        }
        catch (DecoderFallbackException e)
        {
            throw new InputException("$", $"must be UTF-8 text (byte {e.Index + 1} is not UTF-8)", InputRule.NotUnicode);
        }
    }

    /// <summary>The element's string, or a clear error naming the field when it is not a string or not valid Unicode (an escaped lone surrogate).</summary>
    public static string GetString(JsonElement element, string field)
    {
        if (element.ValueKind != JsonValueKind.String) throw new InputException(field, "must be a string");
        try
        {
            return element.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw new InputException(field, "must be valid Unicode text (found an unpaired surrogate escape such as \\ud800)", InputRule.NotUnicode);
        }
    }

    /// <summary>A property's name, or a clear error when it is not valid Unicode.</summary>
    public static string Name(JsonProperty property, string parent)
    {
        try
        {
            return property.Name;
        }
        catch (InvalidOperationException)
        {
            throw new InputException(parent, "a field name must be valid Unicode text (found an unpaired surrogate escape)", InputRule.NotUnicode);
        }
    }

    /// <summary>Refuses a name that appears twice in one object (JSON leaves it to the reader which one wins).</summary>
    public static void RejectDuplicates(JsonElement obj, Func<string, string> field)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in obj.EnumerateObject())
            if (!seen.Add(Name(property, "$")))
                throw new InputException(field(property.Name), "appears twice");
    }
}
