using System.Globalization;
using Newsletter.Validation;

namespace Newsletter.Web;

/// <summary>
/// Query and route values parsed the one way every route shares: a value that does not parse is a
/// 400 naming the parameter and the rule, never a bare 400 from the binder.
/// </summary>
internal static class RequestValues
{
    public static long? Long(string field, string? value) =>
        string.IsNullOrEmpty(value) ? null
        : long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
        : throw new InputException(field, $"must be a whole number (got '{TextRules.Shorten(value)}')");

    public static int? Int(string field, string? value) =>
        string.IsNullOrEmpty(value) ? null
        : int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n) ? n
        : throw new InputException(field, $"must be a whole number (got '{TextRules.Shorten(value)}')");

    public static bool? Bool(string field, string? value) => value switch
    {
        null or "" => null,
        "true" => true,
        "false" => false,
        _ => throw new InputException(field, $"must be true or false (got '{TextRules.Shorten(value)}')"),
    };

    /// <summary>
    /// An address from a route segment. The server decodes every escape in a path but %2F (it would
    /// split the segment), and '/' is a valid character of an address: <c>a%2Fb@example.org</c>.
    /// </summary>
    public static string Email(string segment) => segment.Replace("%2F", "/", StringComparison.OrdinalIgnoreCase);
}
