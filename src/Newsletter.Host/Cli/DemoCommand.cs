using System.CommandLine;
using Newsletter.Delivery;
using Newsletter.Issues;
using Newsletter.Subscribers;

namespace Newsletter.Cli;

/// <summary>
/// <c>newsletter demo</c>: on a fresh clone with nothing configured, imports and publishes the
/// sample issue, adds sample subscribers, and sends each one its digest through the ledger (to the
/// pickup folder unless SMTP is configured). Safe to run again: nothing is sent twice.
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

        // The real path: a weekly and a daily digest run through the ledger, delivered by the engine.
        // The ledger remembers what each subscriber received, so running the demo again sends nothing twice.
        var ledger = app.Get<SendLedger>();
        var engine = app.Get<DeliveryEngine>();
        var sent = 0;
        foreach (var cadence in new[] { Cadence.Weekly, Cadence.Daily })
        {
            var (run, _) = await ledger.StartDigestAsync(cadence, null, ct);
            await engine.DeliverRunAsync(run.Id, ct);
            var done = (await ledger.GetAsync(run.Id, ct))!;
            sent += done.Sent;
            Console.WriteLine($"  {Wire.Name(cadence)} digest: run {done.Id}, {done.Sent} sent");
        }
        var destination = app.Get<IMailTransport>().Destination;
        Console.WriteLine(sent > 0
            ? $"{sent} messages written to {destination}"
            : $"No new messages: every sample subscriber already has the sample issue (see {destination}).");
        return 0;
    }
}
