using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Storage;
using Newsletter.Subscribers;
using Npgsql;
using NpgsqlTypes;

namespace Newsletter.Benchmarks;

/// <summary>
/// One weekly digest end to end into Postfix's smtp-sink on loopback: seeds N subscribers with
/// binary COPY, publishes the sample issue, times the enqueue, then runs the real
/// <c>newsletter send weekly --deliver</c> as the service process (claim, render, send, mark sent),
/// watching its peak RSS. In the same run, Postfix's smtp-source sends N messages of the same size
/// over the same number of connections into the same sink: the baseline of the ratio. CPU time
/// is read from /proc: the service process's user+system time (through the shell's <c>times</c>),
/// and PostgreSQL's (the postmaster, its reaped backends and its live children) over the send.
/// </summary>
internal static class DeliveryBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var subscribers = Arg(args, "--subscribers", 10_000);
        var lanes = Arg(args, "--lanes", 4);
        var dkim = args.Contains("--dkim");
        var window = Arg(args, "--window", 1);
        var sinkKind = args.SkipWhile(a => a != "--sink").Skip(1).FirstOrDefault() ?? "smtp-sink";
        if (sinkKind is not ("smtp-sink" or "postfix")) { Console.Error.WriteLine("--sink: smtp-sink or postfix"); return 2; }
        var language = args.SkipWhile(a => a != "--language").Skip(1).FirstOrDefault() ?? "mixed";
        if (language is not ("mixed" or "ko" or "en" or "both")) { Console.Error.WriteLine("--language: ko, en, both or mixed"); return 2; }
        foreach (var tool in new[] { "/usr/sbin/smtp-sink", "/usr/sbin/smtp-source" })
            if (!File.Exists(tool)) { Console.Error.WriteLine($"{tool} is missing: apt-get install postfix"); return 2; }

        using var scratch = new ScratchDirectory("newsletter-bench");
        var dir = scratch.Path;
        await using var postgres = await PostgresServer.StartAsync(dir, null, NullLogger.Instance);
        await using var db = NpgsqlDataSource.Create(postgres.ConnectionString);
        await new Migrator(db, NullLogger<Migrator>.Instance).MigrateAsync();
        var issue = await new IssueStore(db, TimeProvider.System).ImportAsync(SampleIssue.Document, publish: true);

        var seed = Stopwatch.StartNew();
        await using (var connection = await db.OpenConnectionAsync())
        await using (var copy = await connection.BeginBinaryImportAsync("copy subscribers (email, cadence, language, status, confirmed_at, issues_from) from stdin (format binary)"))
        {
            var since = DateTime.UtcNow.AddDays(-1);
            for (var i = 0; i < subscribers; i++)
            {
                await copy.StartRowAsync();
                await copy.WriteAsync($"reader{i}@example.org", NpgsqlDbType.Text);
                await copy.WriteAsync("weekly", NpgsqlDbType.Text);
                await copy.WriteAsync(language != "mixed" ? language : i % 3 == 0 ? "both" : i % 3 == 1 ? "ko" : "en", NpgsqlDbType.Text);
                await copy.WriteAsync("active", NpgsqlDbType.Text);
                await copy.WriteAsync(since, NpgsqlDbType.TimestampTz);
                await copy.WriteAsync(since, NpgsqlDbType.TimestampTz);
            }
            await copy.CompleteAsync();
        }
        seed.Stop();

        var port = FreePort();
        using var sink = sinkKind == "postfix" ? PostfixSink(Path.Combine(dir, "postfix"), port) : Process.Start(
            new ProcessStartInfo("/usr/sbin/smtp-sink", ["-u", "postfix", $"127.0.0.1:{port}", "256"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        await WaitForPortAsync(port);
        try
        {
            var enqueue = Stopwatch.StartNew();
            var ledger = new SendLedger(db, TimeProvider.System, NullLogger<SendLedger>.Instance);
            var (run, _) = await ledger.StartDigestAsync(Cadence.Weekly, null);
            enqueue.Stop();

            var work = Path.Combine(dir, "work");
            Directory.CreateDirectory(work);
            var postgresBefore = PostgresCpuSeconds(dir);
            var started = DateTime.UtcNow;
            var (deliverSeconds, peakRss, serviceCpu, samples) = await DeliverAsync(postgres.ConnectionString, port, lanes, window, dkim ? DkimKey(dir) : null, work, !args.Contains("--compile-in-process"), dir);
            await Task.Delay(500); // the service's backends exit and are reaped
            var postgresCpu = PostgresCpuSeconds(dir) - postgresBefore;
            var after = (await ledger.GetAsync(run.Id))!;
            DateTime firstSent;
            await using (var connection = await db.OpenConnectionAsync())
            await using (var command = new NpgsqlCommand("select min(sent_at) from deliveries where run_id = $1", connection) { Parameters = { new() { Value = run.Id } } })
                firstSent = DateTime.SpecifyKind((DateTime)(await command.ExecuteScalarAsync())!, DateTimeKind.Utc);
            // The steady state: from the first sample after the first message to the last sample
            // before the last one, and the messages sent in between.
            DateTime lastSent;
            await using (var connection = await db.OpenConnectionAsync())
            await using (var command = new NpgsqlCommand("select max(sent_at) from deliveries where run_id = $1", connection) { Parameters = { new() { Value = run.Id } } })
                lastSent = DateTime.SpecifyKind((DateTime)(await command.ExecuteScalarAsync())!, DateTimeKind.Utc);
            var from = samples.First(x => x.At > firstSent.AddSeconds(1));
            var to = samples.Last(x => x.At < lastSent);
            long steadyMessages;
            await using (var connection = await db.OpenConnectionAsync())
            await using (var command = new NpgsqlCommand("select count(*) from deliveries where run_id = $1 and sent_at > $2 and sent_at <= $3", connection)
                { Parameters = { new() { Value = run.Id }, new() { Value = from.At }, new() { Value = to.At } } })
                steadyMessages = (long)(await command.ExecuteScalarAsync())!;
            var steadyService = (to.ServiceCpu - from.ServiceCpu) * 1000 / steadyMessages;
            var steadyPostgres = (to.PostgresCpu - from.PostgresCpu) * 1000 / steadyMessages;
            var size = await MessageSizeAsync(issue, language == "mixed" ? Language.Both : Wire.Parse<Language>("language", language));
            var sourceSeconds = await SmtpSourceAsync(port, lanes, subscribers, size);

            var ours = after.Sent / deliverSeconds;
            var baseline = subscribers / sourceSeconds;
            Console.WriteLine();
            Console.WriteLine($"| subscribers | language | DKIM | enqueue | delivered | first message | newsletter msg/s | smtp-source msg/s | ratio | service CPU/msg steady (all) | PostgreSQL CPU/msg steady (all) | peak RSS |");
            Console.WriteLine($"| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {subscribers:N0} | {language} ({size / 1000.0:0.0} KB) | {(dkim ? "rsa-2048" : "off")} | {enqueue.Elapsed.TotalSeconds:0.00} s | {after.Sent:N0} sent, {after.Failed + after.Uncertain} not | {(firstSent - started).TotalSeconds:0.0} s | {ours:0} | {baseline:0} | {ours / baseline:0.00} | {steadyService:0.000} ms ({serviceCpu * 1000 / after.Sent:0.000}) | {steadyPostgres:0.000} ms ({postgresCpu * 1000 / after.Sent:0.000}) | {peakRss / 1024.0 / 1024.0:0} MB |"));
            Console.WriteLine($"(sink {sinkKind}, lanes {lanes}, sending window {window}, language {language}, message size {size:N0} bytes, {(dkim ? "DKIM-signed (RSA-2048)" : "no DKIM")}, templates {(args.Contains("--compile-in-process") ? "compiled in the process" : "compiled ahead")}, service CPU {serviceCpu:0.0} s incl. start-up, run {after.Status})");
            return 0;
        }
        finally
        {
            sink.Kill(entireProcessTree: true);
        }
    }

    /// <summary>Runs <c>newsletter send weekly --deliver</c> (which follows the open run) and samples its peak RSS.</summary>
    /// <summary>A fresh RSA-2048 key in PEM, for signing as a real sender would.</summary>
    private static string DkimKey(string dir)
    {
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        var path = Path.Combine(dir, "dkim.pem");
        File.WriteAllText(path, rsa.ExportRSAPrivateKeyPem());
        return path;
    }

    /// <summary>CPU seconds so far of the service process and of PostgreSQL, at one moment.</summary>
    private sealed record CpuSample(DateTime At, double ServiceCpu, double PostgresCpu);

    /// <summary>
    /// A private Postfix (its own configuration and queue under <paramref name="dir"/>, the master
    /// in the foreground) that accepts mail for example.org on <paramref name="port"/> and discards
    /// it: a real MTA's SMTP server, which offers SIZE and CHUNKING.
    /// </summary>
    private static Process PostfixSink(string dir, int port)
    {
        Directory.CreateDirectory(dir);
        return Newsletter.Testing.PostfixInstance.Start(dir, port, "sink.localdomain", """
            relay_domains = example.org
            default_transport = discard
            relay_transport = discard
            local_transport = discard
            smtpd_client_connection_count_limit = 0
            smtpd_client_connection_rate_limit = 0
            default_process_limit = 64
            """);
    }

    private static async Task WaitForPortAsync(int port)
    {
        for (var i = 0; i < 100; i++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }
        throw new InvalidOperationException($"no SMTP server answered on 127.0.0.1:{port}");
    }

    private static async Task<(double Seconds, long PeakRss, double CpuSeconds, List<CpuSample> Samples)> DeliverAsync(string connectionString, int port, int lanes, int window, string? dkimKey, string workingDirectory, bool compileAhead, string dataDirectory)
    {
        // Through a shell whose `times` reports its children's user and system time once they exit.
        var start = new ProcessStartInfo("bash", ["-c", $"dotnet '{Path.Combine(AppContext.BaseDirectory, "newsletter.dll")}' send weekly --deliver >&2; status=$?; times; exit $status"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["ConnectionStrings__Newsletter"] = connectionString;
        start.Environment["Newsletter__Smtp__Host"] = "127.0.0.1";
        start.Environment["Newsletter__Smtp__Port"] = port.ToString(CultureInfo.InvariantCulture);
        start.Environment["Newsletter__Smtp__Security"] = "None";
        start.Environment["Newsletter__Delivery__Lanes"] = lanes.ToString(CultureInfo.InvariantCulture);
        start.Environment["Newsletter__Delivery__SendingWindow"] = window.ToString(CultureInfo.InvariantCulture);
        start.Environment["Newsletter__Secret"] = "benchmark-secret-benchmark-secret-0123456789";
        if (dkimKey is not null)
        {
            start.Environment["Newsletter__From"] = "Newsletter <news@example.org>";
            start.Environment["Newsletter__Dkim__Domain"] = "example.org";
            start.Environment["Newsletter__Dkim__Selector"] = "bench";
            start.Environment["Newsletter__Dkim__PrivateKeyPath"] = dkimKey;
        }
        // As a deployment does: the templates are compiled once, ahead, so the service process
        // loads them and never runs the compiler (`--compile-in-process` measures without it).
        start.WorkingDirectory = workingDirectory;
        if (compileAhead)
        {
            var compile = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "newsletter.dll"), "templates", "compile"])
                { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
            using var compiler = Process.Start(compile)!;
            await compiler.WaitForExitAsync();
            if (compiler.ExitCode != 0) throw new InvalidOperationException($"newsletter templates compile failed: {await compiler.StandardError.ReadToEndAsync()}");
        }
        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        long peak = 0;
        var samples = new List<CpuSample>();
        while (!process.HasExited)
        {
            var service = 0.0;
            foreach (var child in ChildProcesses(process.Id))
            {
                peak = Math.Max(peak, PeakRss(child));
                service += Ticks(child, withChildren: false) / 100.0;
            }
            samples.Add(new CpuSample(DateTime.UtcNow, service, PostgresCpuSeconds(dataDirectory)));
            await Task.Delay(200);
        }
        watch.Stop();
        if (process.ExitCode != 0) throw new InvalidOperationException($"newsletter send failed: {await error}");
        // `times`: the shell's own user and system time, then its children's ("0m1.234s 0m0.567s").
        var children = (await output).Trim().Split('\n')[^1].Split(' ');
        return (watch.Elapsed.TotalSeconds, peak, Seconds(children[0]) + Seconds(children[1]), samples);

        static double Seconds(string t) =>
            int.Parse(t[..t.IndexOf('m')], CultureInfo.InvariantCulture) * 60 + double.Parse(t[(t.IndexOf('m') + 1)..^1], CultureInfo.InvariantCulture);
    }

    private static IEnumerable<int> ChildProcesses(int parent)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            string stat;
            try { stat = File.ReadAllText(Path.Combine(dir, "stat")); } catch (IOException) { continue; } catch (UnauthorizedAccessException) { continue; }
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (int.Parse(fields[1], CultureInfo.InvariantCulture) == parent) yield return pid;
        }
    }

    /// <summary>
    /// PostgreSQL's CPU seconds so far: the postmaster's own and its reaped children's (backends
    /// that have exited), plus its live children's (user + system, from /proc).
    /// </summary>
    internal static double PostgresCpuSeconds(string dataDirectory)
    {
        var postmaster = int.Parse(File.ReadLines(Path.Combine(dataDirectory, "postgres", "postmaster.pid")).First(), CultureInfo.InvariantCulture);
        var ticks = Ticks(postmaster, withChildren: true) + ChildProcesses(postmaster).Sum(pid => Ticks(pid, withChildren: false));
        return ticks / 100.0; // USER_HZ

    }

    /// <summary>User + system clock ticks of a process (and of its reaped children).</summary>
    internal static long Ticks(int pid, bool withChildren)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // fields after the name: state(0) ... utime(11) stime(12) cutime(13) cstime(14)
            var total = long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture);
            if (withChildren) total += long.Parse(f[13], CultureInfo.InvariantCulture) + long.Parse(f[14], CultureInfo.InvariantCulture);
            return total;
        }
        catch (IOException) { return 0; }
    }

    private static long PeakRss(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { return 0; }
    }

    private static async Task<double> SmtpSourceAsync(int port, int connections, int messages, long size)
    {
        var watch = Stopwatch.StartNew();
        using var source = Process.Start(new ProcessStartInfo("/usr/sbin/smtp-source",
            ["-s", connections.ToString(CultureInfo.InvariantCulture), "-m", messages.ToString(CultureInfo.InvariantCulture),
             "-l", size.ToString(CultureInfo.InvariantCulture), "-f", "news@example.org", "-t", "reader@example.org", $"127.0.0.1:{port}"])
            { RedirectStandardError = true, RedirectStandardOutput = true })!;
        await source.WaitForExitAsync();
        watch.Stop();
        return watch.Elapsed.TotalSeconds;
    }

    /// <summary>The wire size of one personalised message of the sample issue.</summary>
    private static async Task<long> MessageSizeAsync(Issue issue, Language language)
    {
        var options = Options.Create(new NewsletterOptions { PublicUrl = "https://news.example.org", Secret = "benchmark-secret-benchmark-secret-0123456789" });
        var digest = await new DigestRenderer(new TemplateEngine(options), options).RenderAsync([issue], language);
        var message = new DigestMessageBuilder(options, new LinkSigner(options.Value.Secret!), new DkimSigning(Options.Create(new DkimOptions())), TimeProvider.System)
            .Build(digest, new Subscriber { Email = "reader@example.org", PublicId = Guid.NewGuid(), Language = language }, "size");
        using var counter = new CountingStream();
        message.WriteTo(counter);
        return counter.Length;
    }

    private static int Arg(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out var v) ? v : fallback;
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
