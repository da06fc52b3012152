using Newsletter.Configuration;

namespace Newsletter.Delivery;

/// <summary>
/// When a delivery that failed for a temporary reason is tried again: after
/// <see cref="DeliveryOptions.RetryBaseDelay"/>, doubling with each attempt (with ±20% jitter),
/// at most <see cref="DeliveryOptions.MaxAttempts"/> times, and not later than half a period after
/// the failure (12 hours for a daily digest, 3.5 days for a weekly one), so a retry never arrives
/// after the reader's next digest: given up, its issues go in that digest.
/// </summary>
internal sealed class RetryPolicy(DeliveryOptions options, TimeProvider clock)
{
    /// <summary>When to try again, or null to give up (and why).</summary>
    public (DateTimeOffset? At, string? GiveUpReason) Next(string runKind, int attempts)
    {
        if (attempts >= options.MaxAttempts) return (null, null);
        var now = clock.GetUtcNow();
        var at = now + options.RetryBaseDelay * Math.Pow(2, attempts - 1) * (0.8 + Random.Shared.NextDouble() * 0.4);
        if (runKind is "daily" or "weekly" && at >= now + (runKind == "daily" ? TimeSpan.FromHours(12) : TimeSpan.FromHours(84)))
            return (null, $"no retry before the next {runKind} digest");
        return (at, null);
    }
}
