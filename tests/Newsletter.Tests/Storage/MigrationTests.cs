using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Newsletter.Storage;
using Newsletter.Tests.Infrastructure;
using Npgsql;

namespace Newsletter.Tests.Storage;

public sealed class MigrationTests
{
    [Fact]
    public async Task A_fresh_database_gets_every_migration_once_and_a_rerun_applies_nothing()
    {
        await using var db = await TestDatabase.CreateAsync(migrated: false);
        var migrator = new Migrator(db.DataSource, NullLogger<Migrator>.Instance);

        var first = await migrator.MigrateAsync();
        var second = await migrator.MigrateAsync();

        Assert.Equal(Migration.Embedded.Select(m => m.Name), first.Select(m => m.Name));
        Assert.Empty(second);
        Assert.Equal(Migration.Embedded.Count, (int)await db.ScalarAsync<long>("select count(*) from schema_migrations"));
        Assert.Equal(0L, await db.ScalarAsync<long>("select count(*) from subscribers"));
    }

    [Fact]
    public async Task Two_processes_starting_at_once_apply_each_migration_exactly_once()
    {
        await using var db = await TestDatabase.CreateAsync(migrated: false);
        // Separate data sources: separate sessions, as two processes would have.
        await using var a = NpgsqlDataSource.Create(db.ConnectionString);
        await using var b = NpgsqlDataSource.Create(db.ConnectionString);

        var results = await Task.WhenAll(
            Task.Run(() => new Migrator(a, NullLogger<Migrator>.Instance).MigrateAsync()),
            Task.Run(() => new Migrator(b, NullLogger<Migrator>.Instance).MigrateAsync()));

        Assert.Equal(Migration.Embedded.Count, results.Sum(r => r.Count));
        Assert.Equal(Migration.Embedded.Count, (int)await db.ScalarAsync<long>("select count(*) from schema_migrations"));
    }

    [Fact]
    public async Task Two_newsletter_processes_migrating_an_empty_database_at_once_both_succeed()
    {
        await using var db = await TestDatabase.CreateAsync(migrated: false);
        var dir = NewsletterProcess.TempDirectory();

        var runs = await Task.WhenAll(NewsletterProcess.RunAsync(db, dir, "migrate"), NewsletterProcess.RunAsync(db, dir, "migrate"));

        Assert.All(runs, r => Assert.True(r.ExitCode == 0, r.Error));
        Assert.Equal(Migration.Embedded.Count, runs.Sum(r => r.Output.Split('\n').Count(l => l.StartsWith("Applied ", StringComparison.Ordinal))));
        Assert.Equal(Migration.Embedded.Count, (int)await db.ScalarAsync<long>("select count(*) from schema_migrations"));
    }

    [Fact]
    public async Task An_applied_migration_that_was_edited_stops_start_up()
    {
        await using var db = await TestDatabase.CreateAsync();
        var edited = Migration.Embedded.Select((m, i) => i == 0 ? new Migration(m.Version, m.Name, m.Sql + "\n-- edited") : m).ToList();

        var error = await Assert.ThrowsAsync<StartupException>(() =>
            new Migrator(db.DataSource, NullLogger<Migrator>.Instance).MigrateAsync(edited, CancellationToken.None));

        Assert.Contains(Migration.Embedded[0].Name, error.Message);
        Assert.Contains("changed after it was applied", error.Message);
    }

    [Fact]
    public async Task A_failing_migration_leaves_nothing_half_applied()
    {
        await using var db = await TestDatabase.CreateAsync();
        var broken = Migration.Embedded.Append(new Migration(9999, "9999_broken.sql", "create table half_done (id int); select * from no_such_table;")).ToList();

        await Assert.ThrowsAsync<PostgresException>(() =>
            new Migrator(db.DataSource, NullLogger<Migrator>.Instance).MigrateAsync(broken, CancellationToken.None));

        await using var connection = await db.DataSource.OpenConnectionAsync();
        Assert.Null(await connection.ExecuteScalarAsync<string>("select to_regclass('half_done')::text"));
        Assert.Equal(0L, await connection.ExecuteScalarAsync<long>("select count(*) from schema_migrations where version = 9999"));
    }
}
