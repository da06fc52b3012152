using Microsoft.Extensions.Options;
using MimeKit;
using Newsletter.Validation;

namespace Newsletter.Configuration;

/// <summary>
/// Validates settings at start-up and names each bad key the way an operator sets it
/// (the environment-variable form), so a typo stops the service with a message, not a stack trace.
/// </summary>
internal sealed class NewsletterOptionsValidator : IValidateOptions<NewsletterOptions>
{
    public ValidateOptionsResult Validate(string? name, NewsletterOptions o)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(o.DataDirectory))
            errors.Add("Newsletter__DataDirectory: must not be empty");
        if (!Uri.TryCreate(o.PublicUrl, UriKind.Absolute, out var url) || (url.Scheme != "http" && url.Scheme != "https") || url.Query.Length > 0)
            errors.Add($"Newsletter__PublicUrl: must be an absolute http(s) URL without a query string (got '{o.PublicUrl}')");
        else if (url.Scheme != "https" && !url.IsLoopback)
            errors.Add($"Newsletter__PublicUrl: must use https (one-click unsubscribe links must be https; plain http is allowed only for localhost) (got '{o.PublicUrl}')");
        CheckMailbox(errors, "Newsletter__From", o.From, required: true);
        CheckMailbox(errors, "Newsletter__ReplyTo", o.ReplyTo, required: false);
        if (o.AdminApiKey is { } key && key.Length < 16)
            errors.Add("Newsletter__AdminApiKey: must be at least 16 characters");
        if (o.Secret is { } secret && secret.Length < 32)
            errors.Add("Newsletter__Secret: must be at least 32 characters");
        if (!string.IsNullOrWhiteSpace(o.TemplatesDirectory) && !Directory.Exists(o.TemplatesDirectory))
            errors.Add($"Newsletter__TemplatesDirectory: folder '{o.TemplatesDirectory}' does not exist");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void CheckMailbox(List<string> errors, string key, string? value, bool required)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            if (required) errors.Add($"{key}: must be set to a mailbox such as 'News <news@example.org>'");
            return;
        }
        if (!MailboxAddress.TryParse(value, out var mailbox) || !EmailAddress.TryParse(mailbox.Address, out _, out _))
            errors.Add($"{key}: '{value}' is not a valid mailbox such as 'News <news@example.org>'");
    }
}

internal sealed class SmtpOptionsValidator : IValidateOptions<SmtpOptions>
{
    public ValidateOptionsResult Validate(string? name, SmtpOptions o)
    {
        var errors = new List<string>();
        if (o.Port is < 1 or > 65535)
            errors.Add($"Newsletter__Smtp__Port: must be between 1 and 65535 (got {o.Port})");
        if (o.TimeoutSeconds is < 1 or > 600)
            errors.Add($"Newsletter__Smtp__TimeoutSeconds: must be between 1 and 600 (got {o.TimeoutSeconds})");
        if (!Enum.IsDefined(o.Security))
            errors.Add("Newsletter__Smtp__Security: must be None, StartTls or SslOnConnect");
        if (o.UsesPickupDirectory && string.IsNullOrWhiteSpace(o.PickupDirectory))
            errors.Add("Newsletter__Smtp__PickupDirectory: must be set when Newsletter__Smtp__Host is not");
        if (string.IsNullOrEmpty(o.Username) != string.IsNullOrEmpty(o.Password))
            errors.Add("Newsletter__Smtp__Username and Newsletter__Smtp__Password: set both or neither");
        if (o.LocalDomain is { Length: > 0 } ehlo && Uri.CheckHostName(ehlo) != UriHostNameType.Dns)
            errors.Add($"Newsletter__Smtp__LocalDomain: '{ehlo}' is not a host name");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class DkimOptionsValidator : IValidateOptions<DkimOptions>
{
    public ValidateOptionsResult Validate(string? name, DkimOptions o)
    {
        var set = new[] { o.Domain, o.Selector, o.PrivateKeyPath }.Count(v => !string.IsNullOrWhiteSpace(v));
        if (set == 0) return ValidateOptionsResult.Success;
        if (set < 3)
            return ValidateOptionsResult.Fail("Newsletter__Dkim__Domain, Newsletter__Dkim__Selector and Newsletter__Dkim__PrivateKeyPath: set all three to sign, or none");
        var errors = new List<string>();
        if (Uri.CheckHostName(o.Domain) != UriHostNameType.Dns || !o.Domain!.Contains('.'))
            errors.Add($"Newsletter__Dkim__Domain: '{o.Domain}' is not a domain name");
        if (!System.Text.RegularExpressions.Regex.IsMatch(o.Selector!, "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"))
            errors.Add($"Newsletter__Dkim__Selector: '{o.Selector}' is not a DNS label");
        try
        {
            using var key = Newsletter.Digests.DkimSigning.LoadPrivateKey(o.PrivateKeyPath!);
        }
        catch (Newsletter.Digests.DkimKeyException e)
        {
            errors.Add(e.Message);
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
