using System.Net.Http.Json;
using Dapper;
using Newsletter.Issues;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Delivery;

public sealed class CrashTests
{
    private const int Lanes = 4;

    private static Dictionary<string, string?> Settings(ScriptedSmtpServer smtp) => new()
    {
        ["Newsletter__Smtp__Host"] = "127.0.0.1",
        ["Newsletter__Smtp__Port"] = smtp.Port.ToString(),
        ["Newsletter__Smtp__Security"] = "None",
        ["Newsletter__Delivery__Lanes"] = Lanes.ToString(),
        ["Newsletter__Delivery__BatchSize"] = "100",
        ["Newsletter__Delivery__Lease"] = "00:00:10",
        ["Newsletter__Delivery__PollInterval"] = "00:00:00.200",
        ["Newsletter__Schedule__MaxLateness"] = "00:00:00",
    };

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    public async Task Killing_the_service_at_random_points_loses_nothing_and_sends_nothing_twice(int window)
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.Issues().ImportAsync(SampleIssue.Document with { Items = SampleIssue.Document.Items.Take(3).ToList() }, publish: true);
        await SeedWeeklySubscribersAsync(db.DataSource, 5000);
        // The scripted peer accepts every complete message; what it received is the ground truth.
        await using var smtp = new ScriptedSmtpServer();
        var seed = Environment.TickCount;
        var random = new Random(seed);

        var settings = new Dictionary<string, string?>(Settings(smtp)) { ["Newsletter__Delivery__SendingWindow"] = window.ToString() };
        var service = await ServiceProcess.StartAsync(db, settings);
        using (var admin = service.Admin())
            (await admin.PostAsync("/api/sends", JsonContent.Create(new { cadence = "weekly" }))).EnsureSuccessStatusCode();
        const int kills = 3;
        for (var i = 0; i < kills; i++)
        {
            await Task.Delay(random.Next(300, 2500));
            await service.KillAsync();
            await service.DisposeAsync();
            service = await ServiceProcess.StartAsync(db, settings);
        }

        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (await db.ScalarAsync<string>("select status from runs") != "done" && DateTime.UtcNow < deadline)
            await Task.Delay(250);
        await service.DisposeAsync();

        Assert.Equal("done", await db.ScalarAsync<string>("select status from runs"));
        await using var read = await db.DataSource.OpenConnectionAsync();
        var ledger = (await read.QueryAsync<(string Email, string Status)>(
            "select s.email, d.status from deliveries d join subscribers s on s.id = d.subscriber_id")).ToDictionary(x => x.Email, x => x.Status);
        var received = smtp.Accepted.GroupBy(r => r).ToDictionary(g => g.Key, g => g.Count());

        var odd = (await read.QueryAsync<(string, string, string?)>("select s.email, d.status, d.last_error from deliveries d join subscribers s on s.id = d.subscriber_id where d.status not in ('sent', 'uncertain')")).ToList();
        Assert.True(odd.Count == 0, string.Join("; ", odd.Take(5)));
        Assert.Equal(5000, ledger.Count);
        Assert.All(ledger.Values, status => Assert.Contains(status, new[] { "sent", "uncertain" }));
        var uncertain = ledger.Where(l => l.Value == "uncertain").Select(l => l.Key).ToHashSet();
        // At most one window per lane and kill.
        Assert.True(uncertain.Count <= Lanes * kills * window, $"{uncertain.Count} uncertain after {kills} kills (seed {seed})");
        foreach (var (email, status) in ledger)
        {
            var count = received.GetValueOrDefault(email);
            if (status == "sent") Assert.True(count == 1, $"{email}: sent, received {count} times (seed {seed})");
            else Assert.True(count <= 1, $"{email}: uncertain, received {count} times (seed {seed})");
        }
        Assert.DoesNotContain(received, r => !ledger.ContainsKey(r.Key));
    }

    [Fact]
    public async Task Sigterm_finishes_the_message_in_flight_releases_the_rest_and_exits_in_time()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.Issues().ImportAsync(SampleIssue.Document with { Items = SampleIssue.Document.Items.Take(1).ToList() }, publish: true);
        await SeedWeeklySubscribersAsync(db.DataSource, 20);
        await using var smtp = new ScriptedSmtpServer { DataDelay = TimeSpan.FromSeconds(3) };
        var settings = new Dictionary<string, string?>(Settings(smtp)) { ["Newsletter__Delivery__Lanes"] = "1", ["Newsletter__Delivery__ShutdownTimeout"] = "00:00:20" };
        var service = await ServiceProcess.StartAsync(db, settings);
        using (var admin = service.Admin())
            (await admin.PostAsync("/api/sends", JsonContent.Create(new { cadence = "weekly" }))).EnsureSuccessStatusCode();
        while (await db.ScalarAsync<long>("select count(*) from deliveries where status = 'sending'") == 0)
            await Task.Delay(50);

        var stopping = System.Diagnostics.Stopwatch.StartNew();
        var (exitCode, _, error) = await service.StopAsync(TimeSpan.FromSeconds(30));
        stopping.Stop();
        await service.DisposeAsync();

        Assert.True(exitCode == 0, error);
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(20), $"took {stopping.Elapsed}");
        await using var read = await db.DataSource.OpenConnectionAsync();
        var states = (await read.QueryAsync<(string Status, long Count)>("select status, count(*) from deliveries group by status")).ToDictionary(x => x.Status, x => x.Count);
        Assert.Equal(1, states.GetValueOrDefault("sent"));
        Assert.Equal(19, states.GetValueOrDefault("queued"));
        Assert.Single(smtp.Accepted);
        Assert.Equal(0L, await db.ScalarAsync<long>("select count(*) from deliveries where lease_until is not null"));
    }

    [Fact]
    public async Task A_postgresql_restart_mid_run_loses_nothing_and_the_workers_reconnect()
    {
        // A cluster of its own: restarting the shared one would disturb the other tests.
        var dir = NewsletterProcess.TempDirectory();
        await using var postgres = await Newsletter.Storage.PostgresServer.StartAsync(dir, null, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance,
            new Dictionary<string, string> { ["fsync"] = "off" });
        await using (var migrate = Npgsql.NpgsqlDataSource.Create(postgres.ConnectionString))
            await new Newsletter.Storage.Migrator(migrate, Microsoft.Extensions.Logging.Abstractions.NullLogger<Newsletter.Storage.Migrator>.Instance).MigrateAsync();
        await using var data = Npgsql.NpgsqlDataSource.Create(postgres.ConnectionString);
        await new IssueStore(data, TimeProvider.System).ImportAsync(SampleIssue.Document with { Items = SampleIssue.Document.Items.Take(1).ToList() }, publish: true);
        await SeedWeeklySubscribersAsync(data, 300);
        await using var smtp = new ScriptedSmtpServer { DataDelay = TimeSpan.FromMilliseconds(20) };
        await using (var service = await ServiceProcess.StartAsync(postgres.ConnectionString, Settings(smtp)))
        {
            using (var admin = service.Admin())
                (await admin.PostAsync("/api/sends", JsonContent.Create(new { cadence = "weekly" }))).EnsureSuccessStatusCode();
            while (smtp.Accepted.Count < 30) await Task.Delay(20);
            await postgres.RestartAsync();

            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (DateTime.UtcNow < deadline && await Scalar<string>(data, "select status from runs") != "done")
                await Task.Delay(250);
        }

        Assert.Equal("done", await Scalar<string>(data, "select status from runs"));
        await using var read = await data.OpenConnectionAsync();
        var ledger = (await read.QueryAsync<(string Email, string Status)>(
            "select s.email, d.status from deliveries d join subscribers s on s.id = d.subscriber_id")).ToDictionary(x => x.Email, x => x.Status);
        var received = smtp.Accepted.GroupBy(r => r).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(300, ledger.Count);
        Assert.True(ledger.Values.Count(v => v == "uncertain") <= Lanes, string.Join(",", ledger.Values.Distinct()));
        Assert.All(ledger, l => Assert.True(l.Value == "sent" ? received.GetValueOrDefault(l.Key) == 1 : l.Value == "uncertain" && received.GetValueOrDefault(l.Key) <= 1, $"{l.Key}: {l.Value}, received {received.GetValueOrDefault(l.Key)}"));
    }

    private static async Task<T> Scalar<T>(Npgsql.NpgsqlDataSource data, string sql)
    {
        // The server may be restarting: a failed read is just "not yet".
        try
        {
            await using var connection = await data.OpenConnectionAsync();
            return await connection.ExecuteScalarAsync<T>(sql) ?? default!;
        }
        catch (Npgsql.NpgsqlException) { return default!; }
    }

    /// <summary>Adds active weekly subscribers reader1..readerN@example.org in one statement.</summary>
    private static async Task SeedWeeklySubscribersAsync(Npgsql.NpgsqlDataSource data, int count)
    {
        await using var connection = await data.OpenConnectionAsync();
        await connection.ExecuteAsync("""
            insert into subscribers (email, cadence, language, status, confirmed_at, issues_from)
            select 'reader' || g || '@example.org', 'weekly', 'en', 'active', now(), now() - interval '1 day'
            from generate_series(1, @count) g
            """, new { count });
    }
}
