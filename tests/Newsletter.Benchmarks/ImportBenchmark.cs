using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Storage;
using Newsletter.Subscribers;
using Npgsql;
using NpgsqlTypes;

namespace Newsletter.Benchmarks;

/// <summary>
/// The subscriber CSV import at scale: writes a file of N rows (with a few invalid and duplicate
/// ones), imports it with the real <see cref="SubscriberImport"/> into a private PostgreSQL, and
/// compares with the floor measured in the same run: a bare binary COPY of the same rows into the
/// same table, with no parsing, validation, merge or history.
/// </summary>
internal static class ImportBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rows = Arg(args, "--rows", 1_000_000);
        using var scratch = new ScratchDirectory("newsletter-import-bench");
        var dir = scratch.Path;
        var file = Path.Combine(dir, "subscribers.csv");
        Directory.CreateDirectory(dir);
        await using (var writer = new StreamWriter(file, false, new UTF8Encoding(false), 1 << 16))
        {
            await writer.WriteAsync("email,name,cadence,language\n");
            for (var i = 0; i < rows; i++)
            {
                // One row in 10,000 is invalid, one in 10,000 repeats an earlier address.
                var email = i % 10_000 == 1 ? "not-an-address" : i % 10_000 == 2 ? $"reader{i - 1}@example.org" : $"reader{i}@example.org";
                await writer.WriteAsync($"{email},\"Reader {i}, 구독자\",{(i % 4 == 0 ? "daily" : "weekly")},{(i % 3) switch { 0 => "ko", 1 => "en", _ => "both" }}\n");
            }
        }

        await using var postgres = await PostgresServer.StartAsync(Path.Combine(dir, "pg"), null, NullLogger.Instance);
        await using var db = NpgsqlDataSource.Create(postgres.ConnectionString);
        await new Migrator(db, NullLogger<Migrator>.Instance).MigrateAsync();

        // The floor: the same rows straight into the table.
        var copy = Stopwatch.StartNew();
        await using (var connection = await db.OpenConnectionAsync())
        await using (var importer = await connection.BeginBinaryImportAsync("copy subscribers (email, name, cadence, language, status) from stdin (format binary)"))
        {
            for (var i = 0; i < rows; i++)
            {
                await importer.StartRowAsync();
                await importer.WriteAsync($"floor{i}@example.org", NpgsqlDbType.Text);
                await importer.WriteAsync($"Reader {i}, 구독자", NpgsqlDbType.Text);
                await importer.WriteAsync(i % 4 == 0 ? "daily" : "weekly", NpgsqlDbType.Text);
                await importer.WriteAsync((i % 3) switch { 0 => "ko", 1 => "en", _ => "both" }, NpgsqlDbType.Text);
                await importer.WriteAsync("active", NpgsqlDbType.Text);
            }
            await importer.CompleteAsync();
        }
        copy.Stop();
        await using (var connection = await db.OpenConnectionAsync())
        {
            await using (var truncate = new NpgsqlCommand("truncate subscribers cascade", connection)) await truncate.ExecuteNonQueryAsync();
            await using (var vacuum = new NpgsqlCommand("vacuum analyze subscribers", connection)) await vacuum.ExecuteNonQueryAsync();
        }

        var import = new SubscriberImport(db, Options.Create(new DeliveryOptions()), Options.Create(new ImportOptions()), TimeProvider.System);
        var watch = Stopwatch.StartNew();
        ImportReport report;
        await using (var stream = File.OpenRead(file))
            report = await import.ImportAsync(stream, SubscriberStatus.Active);
        watch.Stop();

        Console.WriteLine();
        Console.WriteLine("| rows | file | import | bare COPY (floor) | ratio | added | rejected |");
        Console.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {rows:N0} | {new FileInfo(file).Length / 1024.0 / 1024.0:0} MB | {watch.Elapsed.TotalSeconds:0.0} s | {copy.Elapsed.TotalSeconds:0.0} s | {watch.Elapsed.TotalSeconds / copy.Elapsed.TotalSeconds:0.0} | {report.Inserted:N0} | {report.Rejected:N0} |"));
        File.Delete(file);
        return 0;
    }

    private static int Arg(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out var v) ? v : fallback;
    }
}
