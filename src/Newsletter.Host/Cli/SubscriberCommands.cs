using System.CommandLine;
using Newsletter.Subscribers;
using Spectre.Console;

namespace Newsletter.Cli;

internal static class SubscriberCommands
{
    public static Command Create()
    {
        var subscriber = new Command("subscriber", "Add and list subscribers");

        var email = new Argument<string>("EMAIL") { Description = "The subscriber's email address" };
        var name = new Option<string?>("--name") { Description = "Display name" };
        var cadence = new Option<string?>("--cadence") { Description = "weekly (default) or daily" };
        var language = new Option<string?>("--language") { Description = "ko (default), en or both" };
        var timeZone = new Option<string?>("--time-zone") { Description = "IANA time zone of the reader, e.g. America/New_York (default: Newsletter__Schedule__TimeZone)" };
        var hour = new Option<string?>("--hour") { Description = "Local delivery hour, 0-23 (default: Newsletter__Schedule__DeliveryHour)" };
        var weekday = new Option<string?>("--weekday") { Description = "Weekday of a weekly reader, monday ... sunday (default: Newsletter__Schedule__WeeklyDay)" };
        var add = new Command("add", "Add an active subscriber (the admin vouches for the address)") { email, name, cadence, language, timeZone, hour, weekday };
        add.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var request = NewSubscriber.Create(parse.GetValue(email), parse.GetValue(name), parse.GetValue(cadence), parse.GetValue(language),
                DeliveryTime.Parse(parse.GetValue(timeZone), parse.GetValue(hour), parse.GetValue(weekday), "--time-zone", "--hour", "--weekday"));
            var stored = await app.Get<SubscriberStore>().AddActiveAsync(request, token);
            Console.WriteLine($"Added {stored.Email} ({Wire.Name(stored.Cadence)}, {Wire.Name(stored.Language)}).");
            return 0;
        }, ct));
        subscriber.Add(add);

        var list = new Command("list", "List subscribers in the order they joined");
        list.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            Console.WriteLine($"{"EMAIL",-40} {"STATUS",-13} {"CADENCE",-8} {"LANG",-5} {"JOINED",-17} NAME");
            await foreach (var s in app.Get<SubscriberStore>().ListAsync(token))
                Console.WriteLine($"{s.Email,-40} {Wire.Name(s.Status),-13} {Wire.Name(s.Cadence),-8} {Wire.Name(s.Language),-5} {s.CreatedAt:yyyy-MM-dd HH:mm} {s.Name}");
            return 0;
        }, ct));
        subscriber.Add(list);

        var csv = new Argument<string>("FILE") { Description = "CSV file: a header row, then email,name,cadence,language,time_zone,hour,weekday (only email required), UTF-8" };
        var status = new Option<string?>("--status") { Description = "Status of new subscribers: active (default: the admin vouches for them) or pending" };
        var import = new Command("import", "Import subscribers from CSV; prints a report of rejected rows (exit 3 when some were rejected)") { csv, status };
        import.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var path = parse.GetValue(csv)!;
            var asStatus = parse.GetValue(status) is { } st ? Wire.Parse<SubscriberStatus>("--status", st) : SubscriberStatus.Active;
            if (!File.Exists(path)) throw new Newsletter.Validation.InputException("FILE", $"{path} does not exist");
            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            var importer = app.Get<SubscriberImport>();
            ImportReport report;
            if (AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected && !Console.IsErrorRedirected)
            {
                report = await AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                    .StartAsync(async progress =>
                    {
                        var task = progress.AddTask("reading", maxValue: Math.Max(1, file.Length));
                        long read = 0;
                        var work = importer.ImportAsync(file, asStatus, rows => Interlocked.Exchange(ref read, rows), token);
                        while (!work.IsCompleted)
                        {
                            task.Value = Math.Min(file.Length, file.Position);
                            // Once the file is read, the rows are merged into the list in one transaction.
                            task.Description = file.Position >= file.Length
                                ? $"merging {Interlocked.Read(ref read):N0} rows"
                                : $"reading ({Interlocked.Read(ref read):N0} rows)";
                            await Task.WhenAny(work, Task.Delay(100, token));
                        }
                        task.Value = task.MaxValue;
                        return await work;
                    });
            }
            else
            {
                report = await importer.ImportAsync(file, asStatus, null, token);
            }
            Console.WriteLine($"{report.Rows:N0} rows: {report.Inserted:N0} added, {report.Updated:N0} updated, {report.Unchanged:N0} unchanged, {report.Rejected:N0} rejected.");
            foreach (var p in report.Problems)
                Console.WriteLine($"line {p.Line}: {p.Field}: {p.Reason}");
            if (report.Rejected > report.Problems.Count)
                Console.WriteLine($"... and {report.Rejected - report.Problems.Count:N0} more rejected rows.");
            return report.Rejected > 0 ? 3 : 0;
        }, ct));
        subscriber.Add(import);

        var exportStatus = new Option<string?>("--status") { Description = "Only subscribers with this status (pending, active, unsubscribed, bounced, complained)" };
        var export = new Command("export", "Write subscribers as CSV to standard output (email,name,cadence,language,status,created_at,time_zone,hour,weekday)") { exportStatus };
        export.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var filter = parse.GetValue(exportStatus) is { } st ? Wire.Parse<SubscriberStatus>("--status", st) : (SubscriberStatus?)null;
            await using var stdout = new StreamWriter(Console.OpenStandardOutput(), new System.Text.UTF8Encoding(false), 1 << 16);
            await app.Get<SubscriberImport>().ExportAsync(stdout, filter, token);
            return 0;
        }, ct));
        subscriber.Add(export);

        var eraseEmail = new Argument<string>("EMAIL") { Description = "The subscriber's email address" };
        var erase = new Command("erase", "Erase a subscriber's personal data and suppress the address") { eraseEmail };
        erase.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            await app.Get<SubscriberStore>().EraseAsync(parse.GetValue(eraseEmail)!, token);
            Console.WriteLine("Erased; the address is suppressed.");
            return 0;
        }, ct));
        subscriber.Add(erase);
        return subscriber;
    }
}
