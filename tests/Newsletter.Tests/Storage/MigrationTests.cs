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

    [Fact]
    public async Task Upgrading_a_ledger_lists_each_readers_issues_missing_behind_newer_ones_and_orders_the_publications()
    {
        await using var db = await TestDatabase.CreateAsync(migrated: false);
        var migrator = new Migrator(db.DataSource, NullLogger<Migrator>.Instance);
        await migrator.MigrateAsync(Migration.Embedded.Where(m => m.Version <= 14).ToList(), CancellationToken.None);
        await db.ScalarAsync<object?>("""
            insert into issues (slug, title_en, status, published_at) values
                ('one', 'One', 'published', '2026-11-02T09:00Z'), ('two', 'Two', 'published', '2026-11-09T09:00Z'),
                ('three', 'Three', 'published', '2026-11-16T09:00Z'), ('three-too', 'Three too', 'published', '2026-11-16T09:00Z'),
                ('draft', 'Draft', 'draft', null);
            insert into subscribers (email, status, issues_from) values
                ('gap@example.org', 'active', '2026-11-01Z'), ('behind@example.org', 'active', '2026-11-01Z'),
                ('left@example.org', 'unsubscribed', '2026-11-01Z'), ('joined-late@example.org', 'active', '2026-11-10Z');
            insert into receipts (subscriber_id, issue_id, delivery_id)
            select s.id, i.id, 0 from subscribers s, issues i where (s.email, i.slug) in (
                ('gap@example.org', 'one'), ('gap@example.org', 'three'), ('gap@example.org', 'three-too'),
                ('behind@example.org', 'one'),
                ('left@example.org', 'one'), ('left@example.org', 'three'),
                ('joined-late@example.org', 'three'), ('joined-late@example.org', 'three-too'));
            select null
            """);

        await migrator.MigrateAsync();

        // Only a gap behind a newer issue is listed: 'behind' lacks issues after everything they hold
        // (found without a list), 'left' is not active, 'joined-late' joined after 'one' and 'two'.
        Assert.Equal("gap@example.org two", await db.ScalarAsync<string>(
            "select string_agg(s.email || ' ' || i.slug, ', ') from issues_owed o join subscribers s on s.id = o.subscriber_id join issues i on i.id = o.issue_id"));
        Assert.Equal("one, two, three, three-too", await db.ScalarAsync<string>(
            "select string_agg(slug, ', ' order by published_at) from issues where status = 'published'"));
        Assert.Equal(4L, await db.ScalarAsync<long>("select count(distinct published_at) from issues where status = 'published'"));
        Assert.Equal("PRIMARY KEY (issue_id, subscriber_id)", await db.ScalarAsync<string>(
            "select pg_get_constraintdef(oid) from pg_constraint where conname = 'receipts_pkey'"));
        Assert.Equal(8L, await db.ScalarAsync<long>("select count(*) from receipts"));
    }
}
