using Microsoft.Extensions.Options;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
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

    /// <summary>
    /// The application's own composition (<c>AddNewsletterCore</c>) over this database, with what a
    /// test sets in place of configuration: the clock, the options and the mail transport.
    /// </summary>
    public IServiceProvider Services(TimeProvider? clock = null, IMailTransport? transport = null, DeliveryOptions? delivery = null,
        ScheduleOptions? schedule = null, NewsletterOptions? newsletter = null, BounceOptions? bounces = null, TrackingOptions? tracking = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration[$"ConnectionStrings:{NewsletterServices.ConnectionStringName}"] = ConnectionString;
        builder.AddNewsletterCore();
        var services = builder.Services;
        services.AddSingleton(DataSource);
        services.AddSingleton(clock ?? TimeProvider.System);
        services.AddSingleton(Options.Create(newsletter ?? TestMail.Options()));
        services.AddSingleton(Options.Create(delivery ?? new DeliveryOptions()));
        services.AddSingleton(Options.Create(schedule ?? new ScheduleOptions()));
        services.AddSingleton(Options.Create(new SubscribeOptions()));
        services.AddSingleton(Options.Create(new DkimOptions()));
        services.AddSingleton(Options.Create(new SmtpOptions()));
        services.AddSingleton(Options.Create(bounces ?? new BounceOptions()));
        services.AddSingleton(Options.Create(tracking ?? new TrackingOptions()));
        services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.AddSingleton(typeof(ILogger<>), typeof(NullLogger<>));
        if (transport is not null) services.AddSingleton(transport);
        var provider = services.BuildServiceProvider();
        provider.GetRequiredService<SigningSecret>().InitializeAsync().GetAwaiter().GetResult(); // from the options: no query
        return provider;
    }

    public SubscriberStore Subscribers(TimeProvider? clock = null, bool backfillLatest = true) =>
        Services(clock, delivery: new DeliveryOptions { BackfillLatest = backfillLatest }).GetRequiredService<SubscriberStore>();

    public IssueStore Issues(TimeProvider? clock = null) => Services(clock).GetRequiredService<IssueStore>();

    public Subscriptions Subscriptions(TimeProvider? clock = null) => Services(clock).GetRequiredService<Subscriptions>();

    public SendLedger Ledger(TimeProvider? clock = null) => Services(clock).GetRequiredService<SendLedger>();

    public DeliveryEngine Engine(IMailTransport transport, TimeProvider? clock = null, DeliveryOptions? delivery = null, ScheduleOptions? schedule = null,
        NewsletterOptions? newsletter = null) =>
        Services(clock, transport, delivery, schedule, newsletter).GetRequiredService<DeliveryEngine>();

    public DigestScheduler Scheduler(TimeProvider clock, ScheduleOptions? schedule = null) =>
        Services(clock, schedule: schedule).GetRequiredService<DigestScheduler>();

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
