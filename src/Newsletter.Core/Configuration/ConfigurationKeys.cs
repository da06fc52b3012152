using System.Reflection;

namespace Newsletter.Configuration;

/// <summary>Every configuration key the service reads, in the environment-variable form (<c>Newsletter__Smtp__Host</c>).</summary>
public static class ConfigurationKeys
{
    /// <summary>The options classes and the section each is bound to.</summary>
    public static IReadOnlyList<(Type Type, string Section)> Sections { get; } =
    [
        (typeof(NewsletterOptions), NewsletterOptions.Section),
        (typeof(SmtpOptions), SmtpOptions.Section),
        (typeof(DkimOptions), DkimOptions.Section),
        (typeof(ScheduleOptions), ScheduleOptions.Section),
        (typeof(DeliveryOptions), DeliveryOptions.Section),
        (typeof(SubscribeOptions), SubscribeOptions.Section),
        (typeof(ImportOptions), ImportOptions.Section),
        (typeof(BounceOptions), BounceOptions.Section),
        (typeof(BounceMailboxOptions), BounceMailboxOptions.Section),
        (typeof(WebhookOptions), WebhookOptions.Section),
        (typeof(SesWebhookOptions), SesWebhookOptions.Section),
        (typeof(PostmarkWebhookOptions), PostmarkWebhookOptions.Section),
        (typeof(MailgunWebhookOptions), MailgunWebhookOptions.Section),
        (typeof(TrackingOptions), TrackingOptions.Section),
        (typeof(ArchiveOptions), ArchiveOptions.Section),
    ];

    public static IReadOnlyList<string> All { get; } =
        new[] { "ConnectionStrings__Newsletter" }
            .Concat(Sections.SelectMany(s => s.Type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .Where(p => p.SetMethod is { IsPublic: true })
                .Select(p => $"{s.Section.Replace(":", "__")}__{p.Name}")))
            .ToList();
}
