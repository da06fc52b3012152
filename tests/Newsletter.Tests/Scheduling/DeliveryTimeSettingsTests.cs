using System.Net;
using System.Text;
using System.Text.Json;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Scheduling;

/// <summary>A reader's delivery time through the admin API, the CSV import and export, and the CLI (the running service, real PostgreSQL).</summary>
public sealed class DeliveryTimeSettingsTests
{
    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpClient http, HttpMethod method, string path, string body, string type = "application/json")
    {
        using var request = new HttpRequestMessage(method, path) { Content = new StringContent(body, Encoding.UTF8, type) };
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.StartsWith('{') ? JsonDocument.Parse(text).RootElement.Clone() : default);
    }

    [Fact]
    public async Task The_API_the_CSV_and_the_CLI_take_a_zone_an_hour_and_a_weekday_and_name_the_field_they_refuse()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var service = await ServiceProcess.StartAsync(db);
        using var admin = service.Admin();

        var (created, body) = await SendAsync(admin, HttpMethod.Post, "/api/subscribers",
            """{"email":"ny@example.net","cadence":"weekly","timeZone":"America/New_York","hour":7,"weekday":"fri"}""");
        Assert.Equal(HttpStatusCode.Created, created);
        Assert.Equal(("America/New_York", 7, "friday"), (body.GetProperty("timeZone").GetString(), body.GetProperty("hour").GetInt32(), body.GetProperty("weekday").GetString()));
        foreach (var (json, field) in new[]
        {
            ("""{"email":"a@example.net","timeZone":"Mars/Olympus_Mons"}""", "timeZone"),
            ("""{"email":"a@example.net","timeZone":"../../etc/passwd"}""", "timeZone"),
            ("""{"email":"a@example.net","hour":24}""", "hour"),
            ("""{"email":"a@example.net","hour":"-1"}""", "hour"),
            ("""{"email":"a@example.net","weekday":"someday"}""", "weekday"),
        })
        {
            var (status, problem) = await SendAsync(admin, HttpMethod.Post, "/api/subscribers", json);
            Assert.Equal((HttpStatusCode.BadRequest, field), (status, problem.GetProperty("field").GetString()));
        }
        Assert.Equal(1L, await db.ScalarAsync<long>("select count(*) from subscribers"));

        // PATCH: a new hour; then the zone back to the default (null), the rest kept; in the history.
        var (patched, after) = await SendAsync(admin, HttpMethod.Patch, "/api/subscribers/ny@example.net", """{"hour":"6"}""");
        Assert.Equal((HttpStatusCode.OK, 6, "America/New_York"), (patched, after.GetProperty("hour").GetInt32(), after.GetProperty("timeZone").GetString()));
        (_, after) = await SendAsync(admin, HttpMethod.Patch, "/api/subscribers/ny@example.net", """{"timeZone":null}""");
        Assert.Equal(JsonValueKind.Null, after.GetProperty("timeZone").ValueKind);
        Assert.Equal(6, after.GetProperty("hour").GetInt32());
        Assert.Equal(HttpStatusCode.BadRequest, (await SendAsync(admin, HttpMethod.Patch, "/api/subscribers/ny@example.net", """{"hour":"noon"}""")).Status);
        var history = await admin.GetStringAsync("/api/subscribers/ny@example.net/history");
        Assert.Contains("America/New_York 07 friday -> America/New_York 06 friday", history);
        Assert.Contains("America/New_York 06 friday -> default 06 friday", history);

        // CSV: the optional columns, a bad zone rejected by line and field; the export carries them back.
        var csv = "email,cadence,time_zone,hour,weekday\r\nkathmandu@example.net,daily,Asia/Kathmandu,8,\r\nbad@example.net,daily,Asia/Atlantis,8,\r\nlate@example.net,weekly,,23,sunday\r\n";
        var (imported, report) = await SendAsync(admin, HttpMethod.Post, "/api/subscribers/import", csv, "text/csv");
        Assert.Equal(HttpStatusCode.OK, imported);
        Assert.Equal((2, 1), (report.GetProperty("inserted").GetInt32(), report.GetProperty("rejected").GetInt32()));
        var rejected = report.GetProperty("problems")[0];
        Assert.Equal((3, "time_zone"), (rejected.GetProperty("line").GetInt32(), rejected.GetProperty("field").GetString()));
        var export = await admin.GetStringAsync("/api/subscribers/export");
        Assert.StartsWith("email,name,cadence,language,status,created_at,time_zone,hour,weekday\r\n", export);
        Assert.Contains(",Asia/Kathmandu,8,\r\n", export);
        Assert.Contains(",,23,sunday\r\n", export);

        // CLI: exit 2 naming the option; a good one is stored.
        var bad = await NewsletterProcess.RunAsync(db, NewsletterProcess.TempDirectory(), "subscriber", "add", "cli@example.net", "--hour", "25");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--hour", bad.Error);
        var good = await NewsletterProcess.RunAsync(db, NewsletterProcess.TempDirectory(), "subscriber", "add", "cli@example.net", "--time-zone", "Pacific/Chatham", "--hour", "21");
        Assert.True(good.ExitCode == 0, good.Error);
        Assert.Equal("Pacific/Chatham 21", await db.ScalarAsync<string>("select time_zone || ' ' || delivery_hour from subscribers where email = 'cli@example.net'"));
    }
}
