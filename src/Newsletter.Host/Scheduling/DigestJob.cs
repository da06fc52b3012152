using Quartz;

namespace Newsletter.Scheduling;

/// <summary>The Quartz job of the local-time schedule: one call into the scheduler per firing.</summary>
[DisallowConcurrentExecution]
public sealed class DigestJob(DigestScheduler scheduler) : IJob
{
    public const string Name = "digest-local-time";

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken) =>
        await scheduler.FireAsync(null, cancellationToken);
}
