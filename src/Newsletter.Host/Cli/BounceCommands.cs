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
        return bounce;
    }
}
