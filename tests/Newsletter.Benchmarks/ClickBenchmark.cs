using System.Diagnostics;
using System.Globalization;
using System.Net;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Newsletter.Delivery;
using Newsletter.Issues;
using Newsletter.Storage;
using Newsletter.Subscribers;
using Newsletter.Tracking;
using Npgsql;

namespace Newsletter.Benchmarks;

/// <summary>
/// The tracked-link endpoint under load: the real service (<c>newsletter run</c>) against a private
/// PostgreSQL, with one weekly run of D deliveries. A client in this process keeps C requests in
/// flight from eight loopback addresses for S seconds: first against a static route of the same
/// service (<c>/assets/time-zone.js</c>: routing, middleware and Kestrel, nothing else) as the
/// baseline, then against <c>/r/{token}</c> with a random delivery's random link per request
/// (sent an hour ago, a browser's User-Agent: each request goes the whole way through the filter
/// and the batched counting). Reports requests per second, the ratio to the baseline, and CPU time
/// per request of the service and of PostgreSQL (user+system from /proc over each phase), and
/// checks that every redirect was written to <c>click_requests</c>.
/// </summary>
internal static class ClickBenchmark
{
    private const string Secret = "benchmark-secret-benchmark-secret-0123456789";
    private const string Browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

    public static async Task<int> RunAsync(string[] args)
    {
        int Arg(string name, int fallback) => args.SkipWhile(a => a != name).Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).FirstOrDefault(fallback);
        var seconds = Arg("--seconds", 10);
        var connections = Arg("--connections", 32);
        var deliveries = Arg("--deliveries", 20_000);

        using var scratch = new ScratchDirectory("newsletter-click-bench");
        var dir = scratch.Path;
        await using var postgres = await PostgresServer.StartAsync(dir, null, NullLogger.Instance);
        await using var db = NpgsqlDataSource.Create(postgres.ConnectionString);
        await new Migrator(db, NullLogger<Migrator>.Instance).MigrateAsync();
        var issue = await new IssueStore(db, TimeProvider.System).ImportAsync(SampleIssue.Document, publish: true);
        await ScheduleBenchmark.SeedAsync(db, "reader", "weekly", deliveries, DateTimeOffset.UtcNow, zone: null);
        await new SendLedger(db, TimeProvider.System, NullLogger<SendLedger>.Instance).StartDigestAsync(Cadence.Weekly, null);
        long[] ids;
        await using (var connection = await db.OpenConnectionAsync())
        {
            // Sent an hour ago: the service has nothing to send while it is measured.
            await connection.ExecuteAsync("update deliveries set status = 'sent', sent_at = now() - interval '1 hour'; update runs set status = 'done', finished_at = now()");
            ids = (await connection.QueryAsync<long>("select id from deliveries")).ToArray();
        }
        var tokens = new ClickTokens(Secret);
        var sentAt = DateTimeOffset.UtcNow.AddHours(-1);
        var places = issue.Items.SelectMany((item, i) => item.Links.Select((_, l) => (Item: i, Link: l))).ToArray();
        var paths = Enumerable.Range(0, 200_000).Select(n =>
        {
            var (item, link) = places[Random.Shared.Next(places.Length)];
            return "/r/" + tokens.Create(new ClickPlace(ids[Random.Shared.Next(ids.Length)], issue.Id, item, link, sentAt, Language.Ko, ClickCadence.Weekly));
        }).ToArray();

        var port = DeliveryBenchmark.FreePort();
        var baseAddress = new Uri($"http://127.0.0.1:{port}");
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "newsletter.dll"), "run", "--urls", $"http://127.0.0.1:{port}" }) start.ArgumentList.Add(a);
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("Newsletter__", StringComparison.OrdinalIgnoreCase) || k.StartsWith("ConnectionStrings__", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(key);
        start.Environment["ConnectionStrings__Newsletter"] = postgres.ConnectionString;
        start.Environment["Newsletter__Secret"] = Secret;
        start.Environment["Newsletter__PublicUrl"] = baseAddress.ToString().TrimEnd('/');
        start.Environment["Newsletter__Tracking__RequestsPerMinute"] = "100000";
        start.Environment["Newsletter__Schedule__MaxLateness"] = "00:00:00";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        using var service = Process.Start(start)!;
        _ = service.StandardOutput.ReadToEndAsync();
        var errors = service.StandardError.ReadToEndAsync();
        try
        {
            using (var probe = new HttpClient { BaseAddress = baseAddress })
            {
                var deadline = DateTime.UtcNow.AddSeconds(60);
                while (true)
                {
                    if (service.HasExited) { Console.Error.WriteLine(await errors); return 1; }
                    try { if ((await probe.GetAsync("/assets/time-zone.js")).IsSuccessStatusCode) break; }
                    catch (HttpRequestException) when (DateTime.UtcNow < deadline) { }
                    await Task.Delay(200);
                }
            }
            var clients = Enumerable.Range(10, 8).Select(n => Newsletter.Testing.LoopbackClient.From(baseAddress, $"127.0.0.{n}", Browser, connections)).ToArray();
            await LoadAsync(clients, connections, TimeSpan.FromSeconds(2), _ => "/assets/time-zone.js", service.Id, dir); // warm-up
            await LoadAsync(clients, connections, TimeSpan.FromSeconds(2), n => paths[n % paths.Length], service.Id, dir);
            await Task.Delay(TimeSpan.FromSeconds(4)); // the warm-up's requests written and settled
            await using (var connection = await db.OpenConnectionAsync())
                await connection.ExecuteAsync("truncate click_requests; truncate click_counts");
            var baseline = await LoadAsync(clients, connections, TimeSpan.FromSeconds(seconds), _ => "/assets/time-zone.js", service.Id, dir);
            var redirect = await LoadAsync(clients, connections, TimeSpan.FromSeconds(seconds), n => paths[n % paths.Length], service.Id, dir);

            // Every redirect is written (in batches) and counted.
            long written = 0, counted = 0;
            await using (var connection = await db.OpenConnectionAsync())
                for (var i = 0; i < 100; i++)
                {
                    written = await connection.ExecuteScalarAsync<long>("select count(*) from click_requests");
                    counted = await connection.ExecuteScalarAsync<long>("select coalesce(sum(requests), 0) from click_counts");
                    if (counted >= redirect.Ok) break;
                    await Task.Delay(200);
                }

            var c = CultureInfo.InvariantCulture;
            Console.WriteLine();
            Console.WriteLine("| route | requests | answered as expected | requests/s | ratio to baseline | service CPU per request | PostgreSQL CPU per request |");
            Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var (name, r) in new[] { ("`/assets/time-zone.js` (baseline)", baseline), ("`/r/{token}`", redirect) })
                Console.WriteLine(string.Create(c, $"| {name} | {r.Requests:N0} | {r.Ok:N0} | {r.PerSecond:N0} | {r.PerSecond / baseline.PerSecond:N2} | {r.ServiceCpu.TotalMicroseconds / Math.Max(1, r.Requests):N0} µs | {r.PostgresCpu.TotalMicroseconds / Math.Max(1, r.Requests):N0} µs |"));
            Console.WriteLine(string.Create(c, $"({connections} requests in flight from 8 addresses for {seconds} s each; {deliveries:N0} deliveries, {places.Length} links each; {written:N0} requests written to click_requests, {counted:N0} counted, of {redirect.Ok:N0} redirects)"));
            return redirect.Ok == redirect.Requests && counted == redirect.Ok ? 0 : 1;
        }
        finally
        {
            if (!service.HasExited) service.Kill(entireProcessTree: true);
        }
    }

    private sealed record Load(long Requests, long Ok, double PerSecond, TimeSpan ServiceCpu, TimeSpan PostgresCpu);

    private static async Task<Load> LoadAsync(HttpClient[] clients, int connections, TimeSpan duration, Func<int, string> path, int servicePid, string dir)
    {
        long requests = 0, ok = 0;
        var next = 0;
        var before = (Service: DeliveryBenchmark.Ticks(servicePid, withChildren: false), Postgres: DeliveryBenchmark.PostgresCpuSeconds(dir));
        var watch = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, connections).Select(w => Task.Run(async () =>
        {
            var client = clients[w % clients.Length];
            while (watch.Elapsed < duration)
            {
                using var response = await client.GetAsync(path(Interlocked.Increment(ref next)), HttpCompletionOption.ResponseHeadersRead);
                Interlocked.Increment(ref requests);
                if (response.StatusCode is HttpStatusCode.Found or HttpStatusCode.OK) Interlocked.Increment(ref ok);
            }
        })).ToArray();
        await Task.WhenAll(workers);
        var elapsed = watch.Elapsed;
        var service = TimeSpan.FromSeconds((DeliveryBenchmark.Ticks(servicePid, withChildren: false) - before.Service) / 100.0);
        var postgres = TimeSpan.FromSeconds(DeliveryBenchmark.PostgresCpuSeconds(dir) - before.Postgres);
        return new Load(requests, ok, requests / elapsed.TotalSeconds, service, postgres);
    }
}
