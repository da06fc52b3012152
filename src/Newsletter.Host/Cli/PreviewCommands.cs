using System.CommandLine;
using MimeKit;
using Newsletter.Digests;
using Newsletter.Subscribers;

namespace Newsletter.Cli;

internal static class PreviewCommands
{
    public static Command Preview()
    {
        var issue = new Option<string>("--issue") { Description = "Slug of the issue (draft or published)", Required = true };
        var language = new Option<string?>("--language") { Description = "ko, en or both (default both)" };
        var output = new Option<string?>("--out") { Description = "Write the HTML to this file (default: standard output)" };
        var eml = new Option<string?>("--eml") { Description = "Also write the whole message to this .eml file" };
        var command = new Command("preview", "Render an issue's digest as a subscriber would receive it") { issue, language, output, eml };
        command.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var lang = parse.GetValue(language) is { } l ? Wire.Parse<Language>("language", l) : Language.Both;
            var (html, message) = await app.Get<DigestPreview>().RenderAsync(parse.GetValue(issue)!, lang, ct: token);
            if (parse.GetValue(output) is { } htmlPath)
            {
                await File.WriteAllTextAsync(htmlPath, html, token);
                Console.Error.WriteLine($"HTML written to {Path.GetFullPath(htmlPath)}");
            }
            else if (parse.GetValue(eml) is null)
            {
                Console.Out.Write(html);
            }
            if (parse.GetValue(eml) is { } emlPath)
            {
                var format = FormatOptions.Default.Clone();
                format.NewLineFormat = NewLineFormat.Dos;
                await using var stream = File.Create(emlPath);
                await message.WriteToAsync(format, stream, token);
                Console.Error.WriteLine($"Message written to {Path.GetFullPath(emlPath)}");
            }
            return 0;
        }, ct));
        return command;
    }

    public static Command Dkim()
    {
        var dkim = new Command("dkim", "DKIM signing");
        var dns = new Command("dns", "Print the DNS TXT record that publishes the DKIM public key");
        dns.SetAction((parse, ct) => NewsletterCli.WithAppAsync((app, _) =>
        {
            var signing = app.Get<DkimSigning>();
            if (!signing.Enabled)
                throw new Newsletter.Validation.InputException("Newsletter__Dkim__PrivateKeyPath", "DKIM is not configured: set Newsletter__Dkim__Domain, __Selector and __PrivateKeyPath");
            // TXT strings are at most 255 characters each; resolvers join them.
            var record = signing.PublicKeyRecord!;
            var chunks = Enumerable.Range(0, (record.Length + 254) / 255).Select(i => $"\"{record.Substring(i * 255, Math.Min(255, record.Length - i * 255))}\"");
            Console.WriteLine($"{signing.RecordName}. IN TXT ( {string.Join(" ", chunks)} )");
            return Task.FromResult(0);
        }, ct));
        dkim.Add(dns);
        return dkim;
    }
}
