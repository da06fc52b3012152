using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Newsletter.Storage;

/// <summary>One numbered SQL file from <c>db/migrations/</c> (shipped inside the assembly).</summary>
public sealed record Migration(int Version, string Name, string Sql)
{
    public string Checksum { get; } = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(Sql.ReplaceLineEndings("\n")))).ToLowerInvariant();

    /// <summary>The migrations built into this version of the service, in order.</summary>
    public static IReadOnlyList<Migration> Embedded { get; } = LoadEmbedded();

    private static List<Migration> LoadEmbedded()
    {
        var assembly = typeof(Migration).Assembly;
        var list = new List<Migration>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith("migrations/", StringComparison.Ordinal)))
        {
            var name = resource["migrations/".Length..];
            var digits = new string(name.TakeWhile(char.IsAsciiDigit).ToArray());
            if (digits.Length == 0 || !int.TryParse(digits, out var version))
                throw new InvalidOperationException($"Migration '{name}' does not start with its number");
            using var reader = new StreamReader(assembly.GetManifestResourceStream(resource)!, Encoding.UTF8);
            list.Add(new Migration(version, name, reader.ReadToEnd()));
        }
        list.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 1; i < list.Count; i++)
            if (list[i].Version == list[i - 1].Version)
                throw new InvalidOperationException($"Two migrations share number {list[i].Version}");
        return list;
    }
}

/// <summary>
/// Applies pending migrations, each in its own transaction, and records them in <c>schema_migrations</c>.
/// A session-level advisory lock serialises concurrent starts: the second process waits, then finds
/// nothing left to do. A migration that changed after it was applied stops start-up.
/// </summary>
public sealed class Migrator(NpgsqlDataSource dataSource, ILogger<Migrator> logger)
{
    // Arbitrary constant shared by every newsletter process: "newsltr" in ASCII.
    private const long AdvisoryLockKey = 0x6e_65_77_73_6c_74_72;

    /// <summary>Applies what is pending; returns the migrations applied by this call.</summary>
    /// <exception cref="StartupException">An applied migration's file has changed, or the database has a newer schema than this build.</exception>
    public async Task<IReadOnlyList<Migration>> MigrateAsync(CancellationToken cancellationToken = default)
        => await MigrateAsync(Migration.Embedded, cancellationToken);

    internal async Task<IReadOnlyList<Migration>> MigrateAsync(IReadOnlyList<Migration> migrations, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("select pg_advisory_lock(@key)", new { key = AdvisoryLockKey }, cancellationToken: cancellationToken));
        try
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                create table if not exists schema_migrations (
                    version    integer primary key,
                    name       text not null,
                    checksum   text not null,
                    applied_at timestamptz not null default now()
                )
                """, cancellationToken: cancellationToken));
            var applied = (await connection.QueryAsync<(int Version, string Name, string Checksum)>(
                new CommandDefinition("select version, name, checksum from schema_migrations order by version", cancellationToken: cancellationToken)))
                .ToDictionary(m => m.Version);

            foreach (var (version, row) in applied)
            {
                var known = migrations.FirstOrDefault(m => m.Version == version);
                if (known is null)
                    throw new StartupException($"The database has migration {row.Name}, which this build does not know: it was migrated by a newer version of newsletter.");
                if (known.Checksum != row.Checksum)
                    throw new StartupException($"Migration {row.Name} was changed after it was applied; add a new migration instead of editing an applied one.");
            }

            var done = new List<Migration>();
            foreach (var migration in migrations.Where(m => !applied.ContainsKey(m.Version)))
            {
                await using var tx = await connection.BeginTransactionAsync(cancellationToken);
                await connection.ExecuteAsync(new CommandDefinition(migration.Sql, transaction: tx, cancellationToken: cancellationToken, commandTimeout: 600));
                await connection.ExecuteAsync(new CommandDefinition(
                    "insert into schema_migrations (version, name, checksum) values (@Version, @Name, @Checksum)",
                    new { migration.Version, migration.Name, migration.Checksum }, tx, cancellationToken: cancellationToken));
                await tx.CommitAsync(cancellationToken);
                logger.LogInformation("Applied migration {Migration}", migration.Name);
                done.Add(migration);
            }
            return done;
        }
        finally
        {
            await connection.ExecuteAsync("select pg_advisory_unlock(@key)", new { key = AdvisoryLockKey });
        }
    }
}
