using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;

namespace Newsletter.Delivery;

/// <summary>
/// The optional sending limits of this process: a token bucket for messages per second (no
/// bursts above one second's worth) and a fixed window for messages per hour. Every lane waits
/// here before it hands a message to SMTP.
/// </summary>
public sealed class SendRateLimit : IAsyncDisposable
{
    private readonly RateLimiter? _perSecond;
    private readonly RateLimiter? _perHour;

    public SendRateLimit(IOptions<DeliveryOptions> options)
    {
        var o = options.Value;
        if (o.MaxPerSecond > 0)
            _perSecond = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
            {
                TokenLimit = o.MaxPerSecond,
                TokensPerPeriod = o.MaxPerSecond,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = int.MaxValue,
                QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
                AutoReplenishment = true,
            });
        if (o.MaxPerHour > 0)
            _perHour = new FixedWindowRateLimiter(new FixedWindowRateLimiterOptions
            {
                PermitLimit = o.MaxPerHour,
                Window = TimeSpan.FromHours(1),
                QueueLimit = int.MaxValue,
                QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
                AutoReplenishment = true,
            });
    }

    /// <summary>Waits until one more message may go out.</summary>
    public async Task WaitAsync(CancellationToken ct)
    {
        if (_perHour is not null) (await _perHour.AcquireAsync(1, ct)).Dispose();
        if (_perSecond is not null) (await _perSecond.AcquireAsync(1, ct)).Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        if (_perSecond is not null) await _perSecond.DisposeAsync();
        if (_perHour is not null) await _perHour.DisposeAsync();
    }
}
