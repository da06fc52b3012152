using Microsoft.Extensions.Logging.Abstractions;
using Newsletter.Storage;
using Npgsql;

namespace Newsletter.Tests.Infrastructure;

/// <summary>
/// One private PostgreSQL cluster for the whole test run, started by the same code the service
/// uses, plus a template database migrated once. If the cluster cannot start, every test that
/// needs it fails with the reason: nothing is skipped.
/// </summary>
public static class TestCluster
{
    public const string TemplateDatabase = "newsletter_template";

    private static readonly Lazy<Task<PostgresServer>> Server = new(StartAsync);
    private static int _counter;

    public static Task<PostgresServer> GetAsync() => Server.Value;

    /// <summary>A connection string to a new database: migrated (a copy of the template) or empty.</summary>
    public static async Task<string> CreateDatabaseAsync(bool migrated = true)
    {
        var server = await GetAsync();
        var name = $"test_{Environment.ProcessId}_{Interlocked.Increment(ref _counter)}";
        await using var connection = new NpgsqlConnection(server.MaintenanceConnectionString);
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand(migrated ? $"create database {name} template {TemplateDatabase}" : $"create database {name}", connection);
        await create.ExecuteNonQueryAsync();
        return new NpgsqlConnectionStringBuilder(server.ConnectionString) { Database = name }.ConnectionString;
    }

    public static async Task DropDatabaseAsync(string connectionString)
    {
        var server = await GetAsync();
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(server.MaintenanceConnectionString);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"drop database if exists {name} with (force)", connection);
        await drop.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// The test host may end without running exit handlers to completion, so a detached watchdog
    /// stops the cluster (and removes its folder) once this process is gone, however it ended.
    /// </summary>
    private static void StopWhenThisProcessEnds(string directory)
    {
        var pidFile = Path.Combine(directory, "postgres", "postmaster.pid");
        var script = Path.Combine(directory, "watchdog.sh");
        File.WriteAllText(script, $"""
            while kill -0 {Environment.ProcessId} 2>/dev/null; do sleep 0.5; done
            kill -INT "$(head -1 '{pidFile}')" 2>/dev/null
            for i in $(seq 1 60); do [ -e '{pidFile}' ] || break; sleep 0.5; done
            rm -rf '{directory}'
            """);
        // Detached, with no handle on the test run's output, so the runner does not wait for it.
        var start = new System.Diagnostics.ProcessStartInfo("bash") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"setsid bash '{script}' </dev/null >/dev/null 2>&1 &");
        using var launcher = System.Diagnostics.Process.Start(start)!;
        launcher.WaitForExit();
    }

    private static async Task<PostgresServer> StartAsync()
    {
        var directory = Path.Combine(Path.GetTempPath(), $"newsletter-tests-{Environment.ProcessId}");
        // Durability is not under test here; speed is welcome.
        var settings = new Dictionary<string, string> { ["fsync"] = "off", ["synchronous_commit"] = "off", ["full_page_writes"] = "off" };
        var server = await PostgresServer.StartAsync(directory, binDirectory: null, NullLogger.Instance, settings);
        StopWhenThisProcessEnds(directory);

        await using (var connection = new NpgsqlConnection(server.MaintenanceConnectionString))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"create database {TemplateDatabase}", connection);
            await create.ExecuteNonQueryAsync();
        }
        var template = new NpgsqlConnectionStringBuilder(server.ConnectionString) { Database = TemplateDatabase, Pooling = false }.ConnectionString;
        await using (var dataSource = NpgsqlDataSource.Create(template))
            await new Migrator(dataSource, NullLogger<Migrator>.Instance).MigrateAsync();
        return server;
    }
}
