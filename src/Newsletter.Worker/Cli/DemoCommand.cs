using System.CommandLine;
using MimeKit;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Microsoft.Extensions.Options;

namespace Newsletter.Worker.Cli;

/// <summary>
/// <c>newsletter demo</c>: on a fresh clone with nothing configured, imports and publishes the
/// sample issue, adds sample subscribers, and mails each one its digest (to the pickup folder
/// unless SMTP is configured). Safe to run again: existing rows are reused.
/// </summary>
internal static class DemoCommand
{
    public static readonly (string Email, string Name, Cadence Cadence, Language Language)[] SampleSubscribers =
    [
        ("minji.kim@example.com", "김민지", Cadence.Weekly, Language.Ko),
        ("jisoo.park@example.com", "박지수", Cadence.Daily, Language.Both),
        ("alex.morgan@example.com", "Alex Morgan", Cadence.Weekly, Language.En),
        ("sam.lee@example.com", "Sam Lee", Cadence.Daily, Language.En),
    ];

    public static Command Create()
    {
        var command = new Command("demo", "Import the sample issue, add sample subscribers and mail each one a digest");
        command.SetAction((parse, ct) => NewsletterCli.WithAppAsync(ExecuteAsync, ct));
        return command;
    }

    private static async Task<int> ExecuteAsync(NewsletterApp app, CancellationToken ct)
    {
        var issues = app.Get<IssueStore>();
        var document = SampleIssue.Document;
        var issue = await issues.GetAsync(document.Slug, ct);
        if (issue is null || issue.Status != IssueStatus.Published)
            issue = await issues.ImportAsync(document, publish: true, ct);
        Console.WriteLine($"Issue {issue.Slug}: published with {issue.Items.Count} papers.");

        var subscribers = app.Get<SubscriberStore>();
        var recipients = new List<Subscriber>();
        foreach (var (email, name, cadence, language) in SampleSubscribers)
            recipients.Add(await subscribers.FindByEmailAsync(email, ct)
                ?? await subscribers.AddActiveAsync(new NewSubscriber(email, name, cadence, language), ct));

        var renderer = app.Get<DigestRenderer>();
        var builder = app.Get<DigestMessageBuilder>();
        var transport = app.Get<IMailTransport>();
        var sender = app.Get<IOptions<NewsletterOptions>>().Value.FromMailbox;
        var templates = new Dictionary<Language, DigestTemplate>();
        foreach (var subscriber in recipients)
        {
            if (!templates.TryGetValue(subscriber.Language, out var digest))
                templates[subscriber.Language] = digest = await renderer.RenderAsync([issue], subscriber.Language);
            var message = builder.Build(digest, subscriber, $"demo/{issue.Slug}/{subscriber.PublicId}/{DateTime.UtcNow.Ticks}");
            await transport.SendAsync(message, sender, new MailboxAddress(subscriber.Name ?? "", subscriber.Email), ct);
            Console.WriteLine($"  sent to {subscriber.Email} ({Wire.Name(subscriber.Cadence)}, {Wire.Name(subscriber.Language)})");
        }
        Console.WriteLine($"{recipients.Count} messages written to {transport.Destination}");
        return 0;
    }
}
