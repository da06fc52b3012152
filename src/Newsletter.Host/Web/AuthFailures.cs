using System.Collections.Concurrent;

namespace Newsletter.Web;

/// <summary>
/// Counts wrong admin keys per client address in one-minute windows (the API's bearer key and the
/// dashboard's login share it): past <see cref="Limit"/> failures an address is refused with 429
/// until its window ends, right key or not, so the key cannot be guessed by brute force.
/// </summary>
public sealed class AuthFailures(TimeProvider clock)
{
    public const int Limit = 20;
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<string, (DateTimeOffset Start, int Count)> _failures = new();

    /// <summary>How long the address must wait, or null when it may try.</summary>
    public TimeSpan? Blocked(string? address)
    {
        var now = clock.GetUtcNow();
        if (!_failures.TryGetValue(address ?? "", out var entry) || now - entry.Start >= Window) return null;
        return entry.Count >= Limit ? entry.Start + Window - now : null;
    }

    public void Fail(string? address)
    {
        var now = clock.GetUtcNow();
        _failures.AddOrUpdate(address ?? "", _ => (now, 1), (_, e) => now - e.Start >= Window ? (now, 1) : (e.Start, e.Count + 1));
        if (_failures.Count > 10_000)
            foreach (var (key, e) in _failures)
                if (now - e.Start >= Window) _failures.TryRemove(key, out _);
    }
}
