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
        var schedule = builder.Configuration.GetSection(ScheduleOptions.Section).Get<ScheduleOptions>() ?? new ScheduleOptions();
        TimeZoneInfo zone;
        try { zone = schedule.Zone; }
        catch (TimeZoneNotFoundException) { zone = TimeZoneInfo.Utc; } // start-up validation reports the bad value

        builder.Services.AddQuartz(q =>
        {
            q.UsePersistentStore(store =>
            {
                // Quartz takes its connections from the service's NpgsqlDataSource; its tables come from db/migrations.
                store.UsePostgres(ds => ds.UseRegisteredDataSource = true);
                store.UseClustering();
                store.UseSystemTextJsonSerializer();
            });
            foreach (var (cadence, cron) in new[] { (Cadence.Daily, schedule.Daily), (Cadence.Weekly, schedule.Weekly) })
            {
                var name = $"digest-{Wire.Name(cadence)}";
                q.AddJob<DigestJob>(job => job.WithIdentity(name).UsingJobData(DigestJob.CadenceKey, Wire.Name(cadence)).StoreDurably());
                // A missed firing is not replayed by Quartz; DigestScheduler.CatchUpAsync decides at start-up.
                q.AddTrigger(trigger => trigger.ForJob(name).WithIdentity(name)
                    .WithCronSchedule(cron, x => x.InTimeZone(zone).WithMisfireInstruction(CronTriggerMisfireInstruction.DoNothing)));
            }
        });
        builder.Services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
        var delivery = builder.Configuration.GetSection(DeliveryOptions.Section).Get<DeliveryOptions>() ?? new DeliveryOptions();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = delivery.ShutdownTimeout);
        builder.Services.AddHostedService<ScheduleCatchUp>();
        builder.Services.AddHostedService<DeliveryWorker>();
        return builder;
    }
}

/// <summary>At start-up, runs a period that was missed while no process was running, if it is recent enough.</summary>
internal sealed class ScheduleCatchUp(DigestScheduler scheduler, ILogger<ScheduleCatchUp> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await scheduler.CatchUpAsync(stoppingToken);
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
