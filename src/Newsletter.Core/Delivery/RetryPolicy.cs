using Newsletter.Configuration;
using Newsletter.Scheduling;
using Newsletter.Subscribers;

namespace Newsletter.Delivery;

/// <summary>
/// When a delivery that failed for a temporary reason is tried again: after
/// <see cref="DeliveryOptions.RetryBaseDelay"/>, doubling with each attempt (with ±20% jitter),
/// at most <see cref="DeliveryOptions.MaxAttempts"/> times, and never after the next run of its
/// cadence has started (that run carries the next issues). The schedule says when that is.
/// </summary>
internal sealed class RetryPolicy(DeliveryOptions options, ScheduleOptions schedule, TimeProvider clock)
{
    /// <summary>When to try again, or null to give up (and why).</summary>
    public (DateTimeOffset? At, string? GiveUpReason) Next(string runKind, int attempts)
    {
        if (attempts >= options.MaxAttempts) return (null, null);
        var now = clock.GetUtcNow();
        var at = now + options.RetryBaseDelay * Math.Pow(2, attempts - 1) * (0.8 + Random.Shared.NextDouble() * 0.4);
        if (runKind is "daily" or "weekly"
            && DigestSchedule.NextFiringAfter(schedule, Wire.Parse<Cadence>("kind", runKind), now) is { } nextRun && at >= nextRun)
            return (null, $"no retry before the next {runKind} run");
        return (at, null);
    }
}
