using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Subscribers;
using Quartz;

namespace Newsletter.Scheduling;

/// <summary>The long-running parts of the service: the Quartz schedule and the delivery worker.</summary>
public static class SchedulingServices
{
    public static IHostApplicationBuilder AddNewsletterScheduling(this IHostApplicationBuilder builder)
    {
        builder.Services.AddQuartz(q =>
        {
            q.UsePersistentStore(store =>
            {
                // Quartz takes its connections from the service's NpgsqlDataSource; its tables come from db/migrations.
                store.UsePostgres(ds => ds.UseRegisteredDataSource = true);
                store.UseClustering();
                store.UseSystemTextJsonSerializer();
            });
            // One job for both cadences, every quarter hour (zones with :30 and :45 offsets); a
            // missed firing is not replayed by Quartz: the next one covers the time since the last.
            q.AddJob<DigestJob>(job => job.WithIdentity(DigestJob.Name).StoreDurably());
            q.AddTrigger(trigger => trigger.ForJob(DigestJob.Name).WithIdentity(DigestJob.Name)
                .WithCronSchedule("0 0/15 * * * ?", x => x.InTimeZone(TimeZoneInfo.Utc).WithMisfireInstruction(CronTriggerMisfireInstruction.DoNothing)));
        });
        builder.Services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
        var delivery = builder.Configuration.GetSection(DeliveryOptions.Section).Get<DeliveryOptions>() ?? new DeliveryOptions();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = delivery.ShutdownTimeout);
        builder.Services.AddHostedService<ScheduleCatchUp>();
        builder.Services.AddHostedService<DeliveryWorker>();
        return builder;
    }
}

/// <summary>
/// At start-up: removes the per-cadence cron triggers of earlier versions from the job store, and
/// releases the delivery times that came due while no process was running (within <c>MaxLateness</c>).
/// </summary>
internal sealed class ScheduleCatchUp(DigestScheduler scheduler, ISchedulerFactory quartz, ILogger<ScheduleCatchUp> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            var store = await quartz.GetScheduler(stoppingToken);
            foreach (var old in new[] { "digest-daily", "digest-weekly" })
                await store.DeleteJob(new JobKey(old), stoppingToken);
            await scheduler.FireAsync(null, stoppingToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError(e, "Catching up missed digest periods failed");
        }
    }
}

/// <summary>Works off due deliveries for as long as the service runs.</summary>
internal sealed class DeliveryWorker(IServiceProvider services, Microsoft.Extensions.Options.IOptions<DeliveryOptions> options, ILogger<DeliveryWorker> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await using var engine = services.GetRequiredService<DeliveryEngine>();
        while (!stoppingToken.IsCancellationRequested)
        {
            int claimed;
            try
            {
                claimed = await engine.DeliverBatchAsync(null, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogError(e, "Delivery batch failed; trying again shortly");
                claimed = 0;
            }
            if (claimed == 0)
            {
                try { await Task.Delay(options.Value.PollInterval, stoppingToken); }
                catch (OperationCanceledException) { return; }
            }
        }
    }
}
