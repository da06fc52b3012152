using System.Globalization;
using System.Text.RegularExpressions;

namespace Newsletter.Validation;

/// <summary>
/// A subscriber's address as we accept it: one mailbox <c>local@domain</c>, at most 254 characters,
/// a dotted domain (internationalised domains are stored in their ASCII form, lower-cased), and
/// nothing a mail header or an SMTP command could be smuggled through. Every entry point (API,
/// pages, CSV, CLI, lookups) parses addresses here, and only the normalised form this returns is
/// stored or compared. Uniqueness is case-insensitive (the database enforces it).
/// </summary>
public static partial class EmailAddress
{
    public const int MaxLength = 254;

    private static readonly IdnMapping Idn = new();

    public static string Parse(string field, string? value)
        => TryParse(value, out var address, out var rule) ? address : throw new InputException(field, rule, InputRule.NotEmail);

    public static bool TryParse(string? value, out string address, out string rule)
    {
        address = "";
        // Spaces around the address are dropped (a pasted address often has them); anything
        // else outside the dot-atom characters, a line break inside included, is refused.
        var text = value?.Trim(' ', '\t', '\r', '\n') ?? "";
        if (text.Length == 0) { rule = "is required"; return false; }
        if (text.Length > MaxLength) { rule = $"must be at most {MaxLength} characters"; return false; }
        var at = text.LastIndexOf('@');
        if (at <= 0 || at == text.Length - 1 || text.IndexOf('@') != at)
        {
            rule = $"'{TextRules.Shorten(text)}' is not an email address (expected name@example.org)";
            return false;
        }
        var local = text[..at];
        if (local.Length > 64 || !LocalPart().IsMatch(local) || local.StartsWith('.') || local.EndsWith('.') || local.Contains(".."))
        {
            rule = $"'{TextRules.Shorten(text)}' is not an email address (invalid part before @)";
            return false;
        }
        string domain;
        try { domain = Idn.GetAscii(text[(at + 1)..]).ToLowerInvariant(); }
        catch (ArgumentException) { rule = $"'{TextRules.Shorten(text)}' has an invalid domain"; return false; }
        if (!DomainPart().IsMatch(domain))
        {
            rule = $"'{TextRules.Shorten(text)}' is not an email address (domain must look like example.org)";
            return false;
        }
        address = local + "@" + domain;
        rule = "";
        return true;
    }

    // RFC 5322 dot-atom characters; quoted local parts are not accepted for a mailing list.
    // \z, not $: in .NET '$' also matches before a final line feed.
    [GeneratedRegex(@"\A[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+\z")]
    private static partial Regex LocalPart();

    [GeneratedRegex(@"\A(?=.{1,253}\z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}\z")]
    private static partial Regex DomainPart();
}
