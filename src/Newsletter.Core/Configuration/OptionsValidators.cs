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
        foreach (var entry in (o.KnownProxies ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            if (!System.Net.IPAddress.TryParse(entry, out _) && !System.Net.IPNetwork.TryParse(entry, out _))
                errors.Add($"Newsletter__KnownProxies: '{entry}' is not an IP address or a CIDR network such as 10.0.0.0/8");
        if (!Enum.IsDefined(o.MetricsAccess))
            errors.Add("Newsletter__MetricsAccess: must be Admin, Open or Off");
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
        if (o.ReturnPath is { Length: > 0 } returnPath && !EmailAddress.TryParse(returnPath, out _, out _))
            errors.Add($"Newsletter__Smtp__ReturnPath: '{returnPath}' is not an email address");
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

internal sealed class ScheduleOptionsValidator : IValidateOptions<ScheduleOptions>
{
    public ValidateOptionsResult Validate(string? name, ScheduleOptions o)
    {
        var errors = new List<string>();
        if (o.DeliveryHour is < 0 or > 23) errors.Add($"Newsletter__Schedule__DeliveryHour: must be between 0 and 23 (got {o.DeliveryHour})");
        if (!Enum.IsDefined(o.WeeklyDay)) errors.Add($"Newsletter__Schedule__WeeklyDay: must be a weekday such as Monday (got {o.WeeklyDay})");
        try { _ = o.Zone; }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException or ArgumentException)
        {
            errors.Add($"Newsletter__Schedule__TimeZone: '{o.TimeZone}' is not an IANA time zone (e.g. 'Asia/Seoul')");
        }
        if (o.MaxLateness < TimeSpan.Zero || o.MaxLateness > TimeSpan.FromDays(7))
            errors.Add("Newsletter__Schedule__MaxLateness: must be between 00:00:00 and 7.00:00:00");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class DeliveryOptionsValidator : IValidateOptions<DeliveryOptions>
{
    public ValidateOptionsResult Validate(string? name, DeliveryOptions o)
    {
        var errors = new List<string>();
        if (o.BatchSize is < 1 or > 10_000) errors.Add($"Newsletter__Delivery__BatchSize: must be between 1 and 10000 (got {o.BatchSize})");
        if (o.Lease < TimeSpan.FromSeconds(10)) errors.Add("Newsletter__Delivery__Lease: must be at least 00:00:10");
        if (o.PollInterval < TimeSpan.FromMilliseconds(50) || o.PollInterval > TimeSpan.FromMinutes(5)) errors.Add("Newsletter__Delivery__PollInterval: must be between 00:00:00.05 and 00:05:00");
        if (o.ShutdownTimeout < TimeSpan.Zero || o.ShutdownTimeout > TimeSpan.FromMinutes(15)) errors.Add("Newsletter__Delivery__ShutdownTimeout: must be between 00:00:00 and 00:15:00");
        if (o.MaxPerSecond < 0) errors.Add("Newsletter__Delivery__MaxPerSecond: must be 0 (no limit) or more");
        if (o.MaxPerHour < 0) errors.Add("Newsletter__Delivery__MaxPerHour: must be 0 (no limit) or more");
        if (o.Lanes is < 1 or > 64) errors.Add($"Newsletter__Delivery__Lanes: must be between 1 and 64 (got {o.Lanes})");
        if (o.SendingWindow is < 1 or > 64) errors.Add($"Newsletter__Delivery__SendingWindow: must be between 1 and 64 (got {o.SendingWindow})");
        if (o.PauseAfterConsecutiveFailures < 1) errors.Add("Newsletter__Delivery__PauseAfterConsecutiveFailures: must be at least 1");
        if (o.MaxAttempts is < 1 or > 100) errors.Add($"Newsletter__Delivery__MaxAttempts: must be between 1 and 100 (got {o.MaxAttempts})");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class SubscribeOptionsValidator : IValidateOptions<SubscribeOptions>
{
    public ValidateOptionsResult Validate(string? name, SubscribeOptions o)
    {
        var errors = new List<string>();
        if (o.ConfirmationInterval < TimeSpan.Zero || o.ConfirmationInterval > TimeSpan.FromDays(7))
            errors.Add("Newsletter__Subscribe__ConfirmationInterval: must be between 00:00:00 and 7.00:00:00");
        if (o.ConfirmationLinkLifetime < TimeSpan.FromMinutes(10) || o.ConfirmationLinkLifetime > TimeSpan.FromDays(90))
            errors.Add("Newsletter__Subscribe__ConfirmationLinkLifetime: must be between 00:10:00 and 90.00:00:00");
        if (o.RequestsPerMinute is < 1 or > 10_000) errors.Add($"Newsletter__Subscribe__RequestsPerMinute: must be between 1 and 10000 (got {o.RequestsPerMinute})");
        if (o.MaxFormBytes is < 1024 or > 1024 * 1024) errors.Add($"Newsletter__Subscribe__MaxFormBytes: must be between 1024 and 1048576 (got {o.MaxFormBytes})");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

internal sealed class ImportOptionsValidator : IValidateOptions<ImportOptions>
{
    public ValidateOptionsResult Validate(string? name, ImportOptions o) =>
        o.MaxRows is < 1 or > 50_000_000
            ? ValidateOptionsResult.Fail($"Newsletter__Import__MaxRows: must be between 1 and 50000000 (got {o.MaxRows})")
            : ValidateOptionsResult.Success;
}

internal sealed class BounceOptionsValidator : IValidateOptions<BounceOptions>
{
    public ValidateOptionsResult Validate(string? name, BounceOptions o)
    {
        var errors = new List<string>();
        if (o.Domain is { Length: > 0 } domain && (domain.Length > 253 || !System.Text.RegularExpressions.Regex.IsMatch(domain, @"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")))
            errors.Add($"Newsletter__Bounces__Domain: '{domain}' is not a domain name");
        if (o.Listen is { Length: > 0 } listen && !System.Net.IPEndPoint.TryParse(listen, out _))
            errors.Add($"Newsletter__Bounces__Listen: '{listen}' is not an address and port such as 127.0.0.1:2526");
        else if (o.Listen is { Length: > 0 } && string.IsNullOrEmpty(o.Domain))
            errors.Add("Newsletter__Bounces__Listen: needs Newsletter__Bounces__Domain (the endpoint takes mail for that domain only)");
        if (o.MaxMessageBytes is < 10_000 or > 100_000_000)
            errors.Add($"Newsletter__Bounces__MaxMessageBytes: must be between 10000 and 100000000 (got {o.MaxMessageBytes})");
        if (o.MessagesPerMinute is < 1 or > 1_000_000)
            errors.Add($"Newsletter__Bounces__MessagesPerMinute: must be between 1 and 1000000 (got {o.MessagesPerMinute})");
        if (o.BlockRatePause is < 0 or > 1 || double.IsNaN(o.BlockRatePause))
            errors.Add($"Newsletter__Bounces__BlockRatePause: must be between 0 and 1 (got {o.BlockRatePause})");
        if (o.BlockMinimum is < 1 or > 1_000_000) errors.Add($"Newsletter__Bounces__BlockMinimum: must be between 1 and 1000000 (got {o.BlockMinimum})");
        if (o.SoftLimit is < 1 or > 100) errors.Add($"Newsletter__Bounces__SoftLimit: must be between 1 and 100 (got {o.SoftLimit})");
        if (o.SoftWindow < TimeSpan.FromDays(1) || o.SoftWindow > TimeSpan.FromDays(365))
            errors.Add($"Newsletter__Bounces__SoftWindow: must be between 1 and 365 days (got {o.SoftWindow})");
        return errors.Count > 0 ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
    }
}

internal sealed class BounceMailboxOptionsValidator : IValidateOptions<BounceMailboxOptions>
{
    public ValidateOptionsResult Validate(string? name, BounceMailboxOptions o)
    {
        if (string.IsNullOrWhiteSpace(o.Host)) return ValidateOptionsResult.Success;
        var errors = new List<string>();
        if (string.IsNullOrEmpty(o.Username) || string.IsNullOrEmpty(o.Password))
            errors.Add("Newsletter__Bounces__Mailbox__Username and __Password: both are needed to read the mailbox");
        if (o.Port is < 0 or > 65535) errors.Add($"Newsletter__Bounces__Mailbox__Port: must be between 0 and 65535 (got {o.Port})");
        if (o.PollInterval < TimeSpan.FromSeconds(1) || o.PollInterval > TimeSpan.FromHours(1))
            errors.Add($"Newsletter__Bounces__Mailbox__PollInterval: must be between 1 second and 1 hour (got {o.PollInterval})");
        if (string.IsNullOrWhiteSpace(o.Folder)) errors.Add("Newsletter__Bounces__Mailbox__Folder: must not be empty");
        return errors.Count > 0 ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
    }
}

internal sealed class WebhookOptionsValidator : IValidateOptions<WebhookOptions>
{
    public ValidateOptionsResult Validate(string? name, WebhookOptions o)
    {
        var errors = new List<string>();
        if (o.MaxAge < TimeSpan.FromMinutes(1) || o.MaxAge > TimeSpan.FromDays(7))
            errors.Add($"Newsletter__Webhooks__MaxAge: must be between 1 minute and 7 days (got {o.MaxAge})");
        if (o.MaxBodyBytes is < 10_000 or > 50_000_000)
            errors.Add($"Newsletter__Webhooks__MaxBodyBytes: must be between 10000 and 50000000 (got {o.MaxBodyBytes})");
        return errors.Count > 0 ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
    }
}

internal sealed class SesWebhookOptionsValidator : IValidateOptions<SesWebhookOptions>
{
    public ValidateOptionsResult Validate(string? name, SesWebhookOptions o)
    {
        if (string.IsNullOrWhiteSpace(o.Certificate) && string.IsNullOrWhiteSpace(o.TopicArn)) return ValidateOptionsResult.Success;
        if (string.IsNullOrWhiteSpace(o.Certificate) || string.IsNullOrWhiteSpace(o.TopicArn))
            return ValidateOptionsResult.Fail("Newsletter__Webhooks__Ses__Certificate and __TopicArn: both are needed (the SNS signing certificate and the topics to take)");
        try
        {
            if (SesCertificates.Load(o.Certificate).Count == 0)
                return ValidateOptionsResult.Fail($"Newsletter__Webhooks__Ses__Certificate: '{o.Certificate}' holds no PEM certificate");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            return ValidateOptionsResult.Fail($"Newsletter__Webhooks__Ses__Certificate: '{o.Certificate}' cannot be read as PEM certificates ({e.Message})");
        }
        return ValidateOptionsResult.Success;
    }
}

internal sealed class PostmarkWebhookOptionsValidator : IValidateOptions<PostmarkWebhookOptions>
{
    public ValidateOptionsResult Validate(string? name, PostmarkWebhookOptions o) =>
        string.IsNullOrEmpty(o.Username) == string.IsNullOrEmpty(o.Password) ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail("Newsletter__Webhooks__Postmark__Username and __Password: both are needed (the webhook's basic auth)");
}

/// <summary>The SNS signing certificates a PEM file holds.</summary>
public static class SesCertificates
{
    public static IReadOnlyList<System.Security.Cryptography.X509Certificates.X509Certificate2> Load(string path)
    {
        var collection = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
        collection.ImportFromPemFile(path);
        return collection.ToList();
    }
}

internal sealed class TrackingOptionsValidator : IValidateOptions<TrackingOptions>
{
    public ValidateOptionsResult Validate(string? name, TrackingOptions o)
    {
        var errors = new List<string>();
        if (TrackingOptions.ParseMode(o.Clicks) is null)
            errors.Add($"Newsletter__Tracking__Clicks: must be off, aggregate or per-subscriber (got '{o.Clicks}')");
        if (o.KeepRequests < TimeSpan.FromHours(1) || o.KeepRequests > TimeSpan.FromDays(90))
            errors.Add($"Newsletter__Tracking__KeepRequests: must be between 1 hour and 90 days (got {o.KeepRequests})");
        if (o.RequestsPerMinute is < 10 or > 100_000)
            errors.Add($"Newsletter__Tracking__RequestsPerMinute: must be between 10 and 100000 (got {o.RequestsPerMinute})");
        return errors.Count > 0 ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
    }
}
