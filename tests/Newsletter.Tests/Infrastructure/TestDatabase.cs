using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Issues;
using Newsletter.Storage;
using Newsletter.Subscribers;
using Npgsql;

namespace Newsletter.Tests.Infrastructure;

/// <summary>A migrated database of one's own, dropped at the end of the test.</summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private TestDatabase(string connectionString)
    {
        ConnectionString = connectionString;
        DataSource = NpgsqlDataSource.Create(connectionString);
    }

    public string ConnectionString { get; }

    public NpgsqlDataSource DataSource { get; }

    public static async Task<TestDatabase> CreateAsync(bool migrated = true) =>
        new(await TestCluster.CreateDatabaseAsync(migrated));

    public SubscriberStore Subscribers() => new(DataSource);

    public IssueStore Issues(TimeProvider? clock = null) => new(DataSource, clock ?? TimeProvider.System);

    public static IOptions<NewsletterOptions> Options(Action<NewsletterOptions>? configure = null)
    {
        var options = new NewsletterOptions { Secret = "test-secret-test-secret-test-secret-0123456789" };
        configure?.Invoke(options);
        return Microsoft.Extensions.Options.Options.Create(options);
    }

    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var command = DataSource.CreateCommand(sql);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        await TestCluster.DropDatabaseAsync(ConnectionString);
    }
}
