using System.CommandLine;
using System.Text.Json;
using Newsletter.Bounces;

namespace Newsletter.Cli;

internal static class BounceCommands
{
    public static Command Create()
    {
        var bounce = new Command("bounce", "Bounces and complaints");
        var files = new Argument<string[]>("FILE") { Description = "Messages to read (RFC 5322 files: DSNs, ARF reports, auto-replies, MTA bounces)", Arity = ArgumentArity.OneOrMore };
        var inspect = new Command("inspect",
            "Classify bounce messages without touching the database: one JSON object per recipient and line, {\"file\", \"recipient\", \"status\", \"kind\", \"reason\"}")
        {
            files,
        };
        inspect.SetAction(async (parse, ct) =>
        {
            var failed = false;
            foreach (var file in parse.GetValue(files)!)
            {
                BounceReport report;
                try
                {
                    await using var stream = File.OpenRead(file);
                    report = BounceParser.Parse(await BounceParser.LoadAsync(stream, ct));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
                {
                    await Console.Error.WriteLineAsync($"newsletter: {file}: {e.Message}");
                    failed = true;
                    continue;
                }
                foreach (var r in report.Recipients)
                    Console.WriteLine(JsonSerializer.Serialize(new
                    {
                        file, recipient = r.Recipient, status = r.Status, kind = BounceKinds.Name(r.Kind), reason = r.Reason,
                    }));
            }
            return failed ? 1 : 0;
        });
        bounce.Add(inspect);

        var kind = new Option<string?>("--kind") { Description = "Only this kind: hard, soft, block or complaint" };
        var limit = new Option<int>("--limit") { Description = "At most this many, the newest (default 100)", DefaultValueFactory = _ => 100 };
        var list = new Command("list", "Bounces and complaints received after the handoff, oldest first") { kind, limit };
        list.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var only = parse.GetValue(kind) is { } k ? BounceEvents.ParseKind("--kind", k) : (BounceKind?)null;
            var size = parse.GetValue(limit);
            if (size is < 1 or > 10_000) throw new Newsletter.Validation.InputException("--limit", "must be between 1 and 10000");
            var events = new List<BounceEvent>();
            for (long after = 0; ;)
            {
                var page = await app.Get<BounceEvents>().PageAsync(only, after, 1000, token);
                events.AddRange(page);
                if (events.Count > size) events.RemoveRange(0, events.Count - size);
                if (page.Count < 1000) break;
                after = page[^1].Id;
            }
            Console.WriteLine($"{"RECEIVED",-17} {"KIND",-9} {"STATUS",-7} {"REASON",-15} {"EMAIL",-40} {"RUN",6} DIAGNOSTIC");
            foreach (var e in events)
                Console.WriteLine($"{e.ReceivedAt:yyyy-MM-dd HH:mm} {e.Kind,-9} {e.Status ?? "-",-7} {e.Reason,-15} {e.Email,-40} {e.RunId,6} {e.Diagnostic}");
            return 0;
        }, ct));
        bounce.Add(list);
        return bounce;
    }
}
