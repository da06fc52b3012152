using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Newsletter.Scheduling;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;
using Newsletter.Tests.Web;

namespace Newsletter.Tests.Scheduling;

/// <summary>A day's run on the running service: the readers whose hour is still to come, per hour, in the API and on the run's page.</summary>
public sealed class RunStillToComeTests
{
    [Fact]
    public async Task A_days_run_shows_the_readers_still_to_come_per_hour_in_the_API_and_on_its_page()
    {
        await using var db = await TestDatabase.CreateAsync();
        // A zone whose local day has at least three hours left, and two readers there at 22:00 and 23:00.
        var now = DateTimeOffset.UtcNow;
        var offset = Enumerable.Range(-12, 27).First(h => now.AddHours(h).Hour <= 20);
        var zone = offset == 0 ? "Etc/UTC" : $"Etc/GMT{(offset > 0 ? "-" : "+")}{Math.Abs(offset)}"; // Etc/GMT signs are inverted
        var day = DateOnly.FromDateTime(now.AddHours(offset).DateTime);
        foreach (var (email, hour) in new[] { ("late@example.net", 22), ("later@example.net", 23) })
        {
            await db.Subscribers().AddActiveAsync(new NewSubscriber(email, null, Cadence.Daily, Language.En));
            await db.ScalarAsync<object?>($"update subscribers set time_zone = '{zone}', delivery_hour = {hour} where email = '{email}' returning null");
        }
        var until = LocalDelivery.SlicesUntil(Cadence.Daily, day);
        var id = await db.ScalarAsync<long>(
            $"insert into runs (kind, period, created_at, slices_until) values ('daily', '{day:yyyy-MM-dd}', now(), '{until.UtcDateTime:yyyy-MM-dd HH:mm:ss}+00') returning id");
        var expected = new[] { 22, 23 }.Select(h => new DateTimeOffset(day.ToDateTime(new TimeOnly(h, 0)), TimeSpan.FromHours(offset)).ToUniversalTime()).ToList();

        await using var service = await ServiceProcess.StartAsync(db);
        using var admin = service.Admin();
        var run = await admin.GetFromJsonAsync<JsonElement>($"/api/sends/{id}");
        Assert.Equal(2, run.GetProperty("scheduledLater").GetInt64());
        var hours = run.GetProperty("scheduledLaterByHour").EnumerateArray().ToList();
        Assert.Equal(expected, hours.Select(h => new DateTimeOffset(h.GetProperty("hour").GetDateTime(), TimeSpan.Zero)));
        Assert.All(hours, h => Assert.Equal(1, h.GetProperty("readers").GetInt64()));

        using var client = new PageClient(new Uri(service.BaseAddress, "/"));
        await client.GetAsync("/admin/login");
        Assert.Equal(HttpStatusCode.SeeOther, (await client.PostAsync("/admin/login", [("key", ServiceProcess.AdminKey)])).Status);
        var (status, page) = await client.GetAsync($"/admin/runs/{id}");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("Still to come: 2 readers", PageClient.Text(page));
        Assert.Equal(2, System.Text.RegularExpressions.Regex.Matches(page, "<rect[^>]*class=\"bar\"").Count);
        foreach (var hour in expected)
            Assert.Contains($"{hour:MM-dd HH}:00 UTC: 1", PageClient.Text(page));
    }
}
