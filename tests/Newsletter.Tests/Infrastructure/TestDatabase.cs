using Microsoft.Extensions.Options;
using Microsoft.Extensions.Logging.Abstractions;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Scheduling;
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

    public SubscriberStore Subscribers(TimeProvider? clock = null, bool backfillLatest = true) =>
        new(DataSource, Microsoft.Extensions.Options.Options.Create(new DeliveryOptions { BackfillLatest = backfillLatest }), clock ?? TimeProvider.System);

    public IssueStore Issues(TimeProvider? clock = null) => new(DataSource, clock ?? TimeProvider.System);

    public Subscriptions Subscriptions(TimeProvider? clock = null) =>
        new(DataSource, Ledger(clock), Microsoft.Extensions.Options.Options.Create(new SubscribeOptions()),
            Microsoft.Extensions.Options.Options.Create(new DeliveryOptions()), clock ?? TimeProvider.System);

    public SendLedger Ledger(TimeProvider? clock = null) => new(DataSource, clock ?? TimeProvider.System, NullLogger<SendLedger>.Instance);

    public DeliveryEngine Engine(IMailTransport transport, TimeProvider? clock = null, DeliveryOptions? delivery = null, ScheduleOptions? schedule = null,
        NewsletterOptions? newsletter = null)
    {
        var time = clock ?? TimeProvider.System;
        var options = newsletter ?? TestMail.Options();
        var o = Microsoft.Extensions.Options.Options.Create(options);
        return new DeliveryEngine(DataSource, Ledger(time), Issues(time), TestMail.Renderer(options), TestMail.Builder(clock: time, options: options),
            transport, o, Microsoft.Extensions.Options.Options.Create(new SmtpOptions()), Microsoft.Extensions.Options.Options.Create(delivery ?? new DeliveryOptions()),
            Microsoft.Extensions.Options.Options.Create(schedule ?? new ScheduleOptions()), time, NullLogger<DeliveryEngine>.Instance,
            rateLimit: new SendRateLimit(Microsoft.Extensions.Options.Options.Create(delivery ?? new DeliveryOptions())));
    }

    public DigestScheduler Scheduler(TimeProvider clock, ScheduleOptions? schedule = null) =>
        new(Ledger(clock), DataSource, Microsoft.Extensions.Options.Options.Create(schedule ?? new ScheduleOptions()), clock, NullLogger<DigestScheduler>.Instance);


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
