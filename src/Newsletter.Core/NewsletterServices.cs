using Dapper;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Storage;
using Newsletter.Subscribers;
using Npgsql;

namespace Newsletter;

/// <summary>Registers the service's building blocks; the executable composes them.</summary>
public static class NewsletterServices
{
    public const string ConnectionStringName = "Newsletter";

    /// <summary>Options, storage, rendering and the mail transport: what every verb and the service need.</summary>
    public static IHostApplicationBuilder AddNewsletterCore(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<NewsletterOptions>().BindConfiguration(NewsletterOptions.Section).ValidateOnStart();
        services.AddOptions<SmtpOptions>().BindConfiguration(SmtpOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<NewsletterOptions>, NewsletterOptionsValidator>();
        services.AddSingleton<IValidateOptions<SmtpOptions>, SmtpOptionsValidator>();
        services.AddOptions<DkimOptions>().BindConfiguration(DkimOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<DkimOptions>, DkimOptionsValidator>();
        services.AddOptions<ScheduleOptions>().BindConfiguration(ScheduleOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ScheduleOptions>, ScheduleOptionsValidator>();
        services.AddOptions<DeliveryOptions>().BindConfiguration(DeliveryOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<DeliveryOptions>, DeliveryOptionsValidator>();

        services.AddOptions<SubscribeOptions>().BindConfiguration(SubscribeOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<SubscribeOptions>, SubscribeOptionsValidator>();

        services.AddOptions<ImportOptions>().BindConfiguration(ImportOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<ImportOptions>, ImportOptionsValidator>();
        services.AddOptions<BounceOptions>().BindConfiguration(BounceOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<BounceOptions>, BounceOptionsValidator>();
        services.AddOptions<BounceMailboxOptions>().BindConfiguration(BounceMailboxOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<BounceMailboxOptions>, BounceMailboxOptionsValidator>();
        services.AddOptions<WebhookOptions>().BindConfiguration(WebhookOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<WebhookOptions>, WebhookOptionsValidator>();
        services.AddOptions<SesWebhookOptions>().BindConfiguration(SesWebhookOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<SesWebhookOptions>, SesWebhookOptionsValidator>();
        services.AddOptions<PostmarkWebhookOptions>().BindConfiguration(PostmarkWebhookOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<PostmarkWebhookOptions>, PostmarkWebhookOptionsValidator>();
        services.AddOptions<MailgunWebhookOptions>().BindConfiguration(MailgunWebhookOptions.Section);
        services.AddOptions<TrackingOptions>().BindConfiguration(TrackingOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<TrackingOptions>, TrackingOptionsValidator>();
        services.AddOptions<ArchiveOptions>().BindConfiguration(ArchiveOptions.Section);

        services.AddSingleton(TimeProvider.System);
        // One data source for the process. The connection string is read when it is first needed,
        // after the private cluster (if any) has been started and its address put into configuration.
        services.AddSingleton(sp =>
        {
            var connectionString = sp.GetRequiredService<IConfiguration>().GetConnectionString(ConnectionStringName)
                ?? throw new InvalidOperationException("ConnectionStrings__Newsletter is not set and no private cluster was started.");
            var builder = new NpgsqlDataSourceBuilder(connectionString) { Name = "newsletter" };
            // The delivery loop repeats a handful of statements per message: prepare them once per
            // connection unless the connection string says otherwise.
            if (!builder.ConnectionString.Contains("Auto Prepare", StringComparison.OrdinalIgnoreCase))
                builder.ConnectionStringBuilder.MaxAutoPrepare = 32;
            return builder.Build();
        });
        services.AddSingleton<System.Data.Common.DbDataSource>(sp => sp.GetRequiredService<NpgsqlDataSource>());
        services.AddSingleton<Migrator>();
        services.AddSingleton<SigningSecret>();
        services.AddSingleton(sp => new LinkSigner(sp.GetRequiredService<SigningSecret>().Value));
        services.AddSingleton(sp => new Newsletter.Bounces.DeliveryKeys(sp.GetRequiredService<SigningSecret>().Value));
        services.AddSingleton(sp => new Newsletter.Tracking.ClickTokens(sp.GetRequiredService<SigningSecret>().Value));
        services.AddSingleton<Newsletter.Tracking.ClickRecorder>();
        services.AddSingleton<Newsletter.Tracking.ClickReports>();
        services.AddSingleton<Newsletter.Tracking.TrackedLinkTargets>();
        services.AddSingleton<SubscriberStore>();
        services.AddSingleton<Subscriptions>();
        services.AddSingleton<SubscriberImport>();
        services.AddSingleton<IssueStore>();
        services.AddSingleton<TemplateEngine>();
        services.AddSingleton<DigestRenderer>();
        services.AddSingleton<DkimSigning>();
        services.AddSingleton<DigestMessageBuilder>();
        services.AddSingleton<DigestPreview>();
        services.AddSingleton<SendLedger>();
        services.AddSingleton<SendReports>();
        services.AddSingleton<Newsletter.Bounces.BounceProcessor>();
        services.AddSingleton<Newsletter.Bounces.BounceEvents>();
        services.AddSingleton<DeliveryMetrics>();
        services.AddSingleton<SendRateLimit>();
        // Each user (the worker loop, a CLI verb) gets its own engine and its rendering caches.
        services.AddTransient<DeliveryEngine>();
        services.AddSingleton<Newsletter.Scheduling.DigestScheduler>();
        services.AddSingleton<Newsletter.Scheduling.SendForecast>();
        services.AddSingleton<IMailTransport>(sp =>
        {
            var smtp = sp.GetRequiredService<IOptions<SmtpOptions>>().Value;
            return smtp.UsesPickupDirectory ? new PickupDirectoryTransport(smtp.PickupDirectory) : new SmtpTransport(smtp, sp.GetRequiredService<DeliveryMetrics>());
        });
        return builder;
    }

    /// <summary>Brings the database to this build's schema and loads the signing secret; run once at start-up.</summary>
    /// <returns>The migrations this call applied.</returns>
    public static async Task<IReadOnlyList<Migration>> InitializeStorageAsync(this IServiceProvider services, CancellationToken ct = default)
    {
        var applied = await services.GetRequiredService<Migrator>().MigrateAsync(ct);
        await services.GetRequiredService<SigningSecret>().InitializeAsync(ct);
        return applied;
    }
}
