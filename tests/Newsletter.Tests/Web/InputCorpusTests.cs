using System.Net;
using System.Text;
using System.Text.Json;
using System.Xml.Linq;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;
using Newsletter.Validation;

namespace Newsletter.Tests.Web;

/// <summary>
/// Every text and address rule over a generated corpus (line terminators of every kind,
/// surrogates, non-characters, bidirectional controls, zero-width characters, NUL, formula
/// prefixes, overlong input), through every entry point: the admin API, the public form, the CSV
/// import and the command line. Each value is either refused with a 4xx or a non-zero exit naming
/// the field, or stored exactly as the shared rules normalise it; never a 500; and a run over
/// everything that was stored sends every message.
/// </summary>
public sealed class InputCorpusTests
{
    /// <summary>What gets mixed into otherwise good values.</summary>
    private static readonly string[] Perturbations =
    [
        "\n", "\r", "\r\n", "\u0085", "\u2028", "\u2029", "\v", "\f", "\t", "\0", "\u001B",
        ((char)0xD800).ToString(), ((char)0xDFFF).ToString(), "\uD83D\uDE00",
        "\uFFFE", "\uFFFF", "\uFDD0", "\U0001FFFF",
        "\u202E", "\u202A", "\u2066", "\u200F", "\u061C",
        "\u200B", "\u200D", "\u2060", "\uFEFF", "\u00AD",
        "=", "+", "-", "@", "=cmd|' /C calc'!A0", "%%NL:GREETING-KO%%", "<b>\"&'</b>",
        " ", "  ", "가", "",
    ];

    private static IEnumerable<string> Names()
    {
        foreach (var p in Perturbations)
        {
            yield return p;
            yield return "Kim" + p;
            yield return p + "Kim";
            yield return "Kim" + p + "Lee";
        }
        yield return new string('a', 100);
        yield return new string('a', 101);
        yield return new string('가', 101);
        yield return " " + new string('b', 100) + " ";
    }

    private static IEnumerable<string> Locals(string prefix)
    {
        var i = 0;
        foreach (var p in Perturbations)
        {
            i++;
            yield return $"{prefix}{i}a{p}";
            yield return $"{p}{prefix}{i}b";
            yield return $"{prefix}{i}c{p}x";
        }
        yield return prefix + new string('l', 64);
        yield return prefix + new string('l', 65);
    }

    private static IEnumerable<string> Emails(string prefix)
    {
        foreach (var local in Locals(prefix)) yield return local + "@example.org";
        var n = 0;
        foreach (var p in Perturbations) yield return $"{prefix}d{++n}@example.org{p}";
        yield return prefix + "long@" + string.Join('.', Enumerable.Repeat(new string('d', 60), 4)) + ".org";
        yield return $"\n {prefix}spaced@example.org \r\n";
    }

    /// <summary>What the shared rules make of a value: the stored (email, name), or the refused field.</summary>
    private static (string? Email, string? Name, string? Field) Expected(string email, string? name)
    {
        try
        {
            var valid = NewSubscriber.Create(email, name, null, null);
            return (valid.Email, valid.Name, null);
        }
        catch (InputException e)
        {
            return (null, null, e.Field);
        }
    }

    /// <summary>What survives a trip through UTF-8 (a form, a CSV file, a command line): an unpaired surrogate becomes U+FFFD.</summary>
    private static string Utf8(string value) => Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(value));

    /// <summary>Checks that hold for every stored value, whatever the rules say.</summary>
    private static void AssertSafe(string email, string? name)
    {
        Assert.DoesNotContain(email, c => char.IsControl(c) || char.IsWhiteSpace(c) || char.IsSurrogate(c) || c > 0x7E);
        Assert.Single(email, '@');
        if (name is null) return;
        Assert.Equal(name.Trim(), name);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            Assert.False(char.IsControl(c) || c is '\u2028' or '\u2029' or >= '\u202A' and <= '\u202E' or >= '\u2066' and <= '\u2069' or '\u200B' or '\u2060' or '\uFEFF' or '\uFFFE' or '\uFFFF',
                $"U+{(int)c:X4} in a stored name");
            if (char.IsHighSurrogate(c)) { Assert.True(i + 1 < name.Length && char.IsLowSurrogate(name[++i]), "unpaired surrogate"); continue; }
            Assert.False(char.IsLowSurrogate(c), "unpaired surrogate");
        }
    }

    [Fact]
    public async Task Every_entry_point_applies_one_rule_set_and_nothing_stored_breaks_a_page_a_feed_or_a_run()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var smtp = new TestSmtpServer();
        var settings = ServiceProcess.SendingTo(smtp);
        settings["Newsletter__Subscribe__RequestsPerMinute"] = "10000";
        await using var service = await ServiceProcess.StartAsync(db, settings);
        using var admin = service.Admin();
        var stored = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase); // email -> name, what must be in the database
        var checkedValues = 0;

        async Task ExpectStoredAsync(string email, string? name, string entry, Func<Task<(int Status, string? Field)>> send)
        {
            var expected = Expected(email, name);
            if (expected.Email is not null && stored.ContainsKey(expected.Email)) return; // the same address through another way in
            var (status, field) = await send();
            checkedValues++;
            Assert.True(status < 500, $"{entry}: {status} for {JsonSerializer.Serialize(new { email, name })}");
            if (expected.Field is not null)
            {
                Assert.True(status is >= 400 and < 500 || status == 2, $"{entry}: accepted {JsonSerializer.Serialize(new { email, name })}, which breaks {expected.Field}");
                Assert.True(field == expected.Field, $"{entry}: named '{field}' for {JsonSerializer.Serialize(new { email, name })}, not '{expected.Field}'");
            }
            else
            {
                Assert.True(status is 200 or 201 or 0, $"{entry}: refused {JsonSerializer.Serialize(new { email, name })} ({status}, {field})");
                stored[expected.Email!] = expected.Name;
            }
        }

        // The admin API, as JSON (which can carry an unpaired surrogate as an escape).
        var n = 0;
        foreach (var name in Names())
        {
            var email = $"api-name{++n}@example.org";
            await ExpectStoredAsync(email, name, "POST /api/subscribers", () => PostJsonAsync(admin, email, name));
        }
        foreach (var email in Emails("api"))
            await ExpectStoredAsync(email, null, "POST /api/subscribers", () => PostJsonAsync(admin, email, null));

        // The public form (url-encoded UTF-8).
        n = 0;
        foreach (var name in Names().Select(Utf8))
        {
            var email = $"form-name{++n}@example.org";
            await ExpectStoredAsync(email, name, "POST /subscribe", () => PostFormAsync(service, email, name));
        }
        foreach (var email in Emails("form").Select(Utf8))
            await ExpectStoredAsync(email, "", "POST /subscribe", () => PostFormAsync(service, email, ""));

        // The CSV import: one file, one report line per refused row.
        var rows = new List<(string Email, string Name)>();
        n = 0;
        foreach (var name in Names().Select(Utf8)) rows.Add(($"csv-name{++n}@example.org", name));
        foreach (var email in Emails("csv").Select(Utf8)) rows.Add((email, ""));
        var csv = new StringBuilder("email,name\r\n");
        foreach (var (email, name) in rows) csv.Append(Quote(email)).Append(',').Append(Quote(name)).Append("\r\n");
        var report = JsonDocument.Parse(await (await admin.PostAsync("/api/subscribers/import", new StringContent(csv.ToString(), Encoding.UTF8, "text/csv"))).Content.ReadAsStringAsync()).RootElement;
        var problems = report.GetProperty("problems").EnumerateArray().ToDictionary(p => p.GetProperty("line").GetInt64(), p => p.GetProperty("field").GetString());
        foreach (var (email, name) in rows)
        {
            var recordLine = RecordLine(rows, email, name);
            await ExpectStoredAsync(email, name, "CSV import", () =>
                Task.FromResult(problems.TryGetValue(recordLine, out var field) ? (400, field) : (200, (string?)null)));
        }

        // The command line, for a sample of each kind of value (each run starts a process).
        var sample = new (string Email, string Name)[]
        {
            ("cli1\n@example.org", "Kim"), ("cli2@example.org\n", "Kim"), ("cli3@example.org", "Kim\u202E"), ("cli4@example.org", "Kim\uFFFF"),
            ("cli5@example.org", "\u200B"), ("cli6@example.org", "=HYPERLINK(\"x\")"), ("cli7\u2028@example.org", "Kim"), ("cli8@example.org", new string('a', 101)),
        };
        foreach (var (email, name) in sample)
            await ExpectStoredAsync(email, name, "newsletter subscriber add", async () =>
            {
                var result = await NewsletterProcess.RunAsync(db, NewsletterProcess.TempDirectory(), "subscriber", "add", email, "--name", name);
                var field = result.ExitCode == 0 ? null : result.Error.Split('\n')[0].Replace("newsletter: ", "").Split(':')[0];
                return (result.ExitCode, field);
            });
        Assert.True(checkedValues > 500, $"only {checkedValues} values checked");

        // The database holds exactly what the rules allowed, and each value is safe on its own terms.
        await using (var command = db.DataSource.CreateCommand("select email, name from subscribers"))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            var inDatabase = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            while (await reader.ReadAsync())
            {
                var (email, name) = (reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1));
                AssertSafe(email, name);
                inDatabase[email] = name;
            }
            Assert.Equal(stored.OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase).Select(p => (p.Key, p.Value)),
                inDatabase.OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase).Select(p => (p.Key, p.Value)));
        }

        // Issue titles through the API: refused naming the field, or stored; then all published.
        var slugs = new List<string>();
        n = 0;
        foreach (var title in Names())
        {
            var slug = $"corpus-{++n}";
            var json = $$$"""
                {"slug":"{{{slug}}}","title":{"en":{{{JsonString(title)}}}},"items":[{"title":{"en":{{{JsonString(title + " paper")}}}},
                 "summary":{"en":{{{JsonString("Line one\r\nline two " + title)}}}},"links":[{"label":"paper","url":"https://arxiv.org/abs/2404.14219"}]}]}
                """;
            using var response = await admin.PostAsync("/api/issues", new StringContent(json, Encoding.UTF8, "application/json"));
            Assert.True((int)response.StatusCode < 500, $"title {JsonSerializer.Serialize(title)}: {response.StatusCode}");
            string? refused = null;
            try
            {
                TextRules.SingleLine("title.en", title, TextRules.MaxTitleLength);
                TextRules.SingleLine("items[0].title.en", title + " paper", TextRules.MaxTitleLength);
                TextRules.MultiLine("items[0].summary.en", "Line one\r\nline two " + title, TextRules.MaxSummaryLength);
            }
            catch (InputException e) { refused = e.Field; }
            if (refused is null)
            {
                Assert.Equal(HttpStatusCode.Created, response.StatusCode);
                slugs.Add(slug);
                Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync($"/api/issues/{slug}/publish", null)).StatusCode);
            }
            else
            {
                Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
                Assert.Equal(refused, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("field").GetString());
            }
        }
        Assert.True(slugs.Count > 20);

        // Whatever was stored renders: the archive, the feed, the dashboard's list, every preview.
        Assert.Equal(HttpStatusCode.OK, (await service.Http.GetAsync("/issues")).StatusCode);
        XDocument.Parse(await service.Http.GetStringAsync("/feed.xml"));
        foreach (var slug in slugs.Take(10))
            Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync($"/api/issues/{slug}/preview?language=en")).StatusCode);

        // And a digest of all of it goes to every active subscriber: no delivery fails.
        var run = JsonDocument.Parse(await (await admin.PostAsync("/api/sends", new StringContent("""{"cadence":"weekly"}""", Encoding.UTF8, "application/json"))).Content.ReadAsStringAsync()).RootElement;
        var done = await ServiceProcess.WaitForRunAsync(admin, run.GetProperty("id").GetInt64());
        var active = await db.ScalarAsync<long>("select count(*) from subscribers where status = 'active'");
        Assert.Equal(active, done.GetProperty("sent").GetInt64());
        Assert.Equal(0, done.GetProperty("failed").GetInt32());
    }

    /// <summary>The line a CSV record starts on: the header is line 1, and a quoted field's line breaks count.</summary>
    private static long RecordLine(List<(string Email, string Name)> rows, string email, string name)
    {
        var line = 2L;
        foreach (var row in rows)
        {
            if (ReferenceEquals(row.Email, email) && ReferenceEquals(row.Name, name)) return line;
            line += 1 + LineBreaks(row.Email) + LineBreaks(row.Name);
        }
        throw new InvalidOperationException("not a row");
    }

    // The reader counts a line at each LF inside a quoted field (a CRLF is one line break).
    private static int LineBreaks(string field) => field.Count(c => c == '\n');

    /// <summary>A JSON string that carries every UTF-16 unit as it is, an unpaired surrogate included (as an escape).</summary>
    private static string JsonString(string value)
    {
        var sb = new StringBuilder("\"");
        foreach (var c in value)
            sb.Append(c is < ' ' or '"' or '\\' or > '~' ? $"\\u{(int)c:x4}" : c.ToString());
        return sb.Append('"').ToString();
    }

    private static string Quote(string field) => "\"" + field.Replace("\"", "\"\"") + "\"";

    private static async Task<(int, string?)> PostJsonAsync(HttpClient admin, string email, string? name)
    {
        var body = $"{{\"email\":{JsonString(email)},\"name\":{(name is null ? "null" : JsonString(name))}}}";
        using var response = await admin.PostAsync("/api/subscribers", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        string? field = null;
        if (!response.IsSuccessStatusCode && text.Length > 0 && JsonDocument.Parse(text).RootElement.TryGetProperty("field", out var f)) field = f.GetString();
        return ((int)response.StatusCode, field);
    }

    private static async Task<(int, string?)> PostFormAsync(ServiceProcess service, string email, string name)
    {
        using var page = new PageClient(service.BaseAddress);
        await page.GetAsync("/subscribe?lang=en");
        var (status, html) = await page.PostAsync("/subscribe?lang=en", [("email", email), ("name", name), ("cadence", "weekly"), ("language", "en"), ("website", "")]);
        // The form marks the refused field: aria-invalid on its input.
        var invalid = new AngleSharp.Html.Parser.HtmlParser().ParseDocument(html).QuerySelector("[aria-invalid=true]")?.GetAttribute("name");
        return ((int)status, invalid);
    }
}
