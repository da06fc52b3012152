using Quartz;
using Newsletter.Subscribers;

namespace Newsletter.Scheduling;

/// <summary>The Quartz job behind the daily and weekly triggers: one call into the scheduler.</summary>
[DisallowConcurrentExecution]
public sealed class DigestJob(DigestScheduler scheduler) : IJob
{
    public const string CadenceKey = "cadence";

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var cadence = Wire.Parse<Cadence>(CadenceKey, context.MergedJobDataMap.GetString(CadenceKey));
        // The scheduled time, not the time it ran: that is what names the period.
        await scheduler.FireAsync(cadence, context.ScheduledFireTimeUtc ?? context.FireTimeUtc, cancellationToken);
    }
}
