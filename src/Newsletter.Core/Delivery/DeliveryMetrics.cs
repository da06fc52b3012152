using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Newsletter.Delivery;

/// <summary>
/// Counters of the delivery engine, written out in the Prometheus text format by <c>GET /metrics</c>:
/// messages by run kind and result, bounces by kind, retries, lane connections, and a send-latency histogram. Queue
/// depth and paused runs are read from the database when scraped.
/// </summary>
public sealed class DeliveryMetrics
{
    private static readonly double[] Buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private readonly ConcurrentDictionary<(string Kind, string Result), long> _messages = new();
    private readonly long[] _latencyBuckets = new long[Buckets.Length + 1];
    private long _latencyCount;
    private double _latencySum;
    private readonly Lock _latencyLock = new();
    private readonly ConcurrentDictionary<string, long> _bounces = new();
    private readonly ConcurrentDictionary<(string Source, string Reason), long> _refused = new();
    private long _retries;
    private long _connections;

    public void Message(string kind, SendResult result) =>
        _messages.AddOrUpdate((kind, result.ToString().ToLowerInvariant()), 1, (_, n) => n + 1);

    public void Retry() => Interlocked.Increment(ref _retries);

    /// <summary>A report came back after the handoff and was recorded (hard, soft, block, complaint).</summary>
    public void Bounce(string kind) => _bounces.AddOrUpdate(kind, 1, (_, n) => n + 1);

    /// <summary>
    /// A report or provider call that changed nothing, and why: <c>unmatched</c> (no delivery of ours),
    /// <c>ignored</c> (an auto-reply, a delivery notice), <c>duplicate</c>, <c>unreadable</c>,
    /// <c>rate-limited</c>, <c>wrong-domain</c>, <c>unauthenticated</c>, <c>replayed</c>, <c>malformed</c>.
    /// </summary>
    public void ReportRefused(string source, string reason) => _refused.AddOrUpdate((source, reason), 1, (_, n) => n + 1);

    /// <summary>A lane opened a connection (the first, or a reconnect after a drop).</summary>
    public void Connection() => Interlocked.Increment(ref _connections);

    public void SendLatency(TimeSpan elapsed)
    {
        var seconds = elapsed.TotalSeconds;
        var i = Array.FindIndex(Buckets, b => seconds <= b);
        lock (_latencyLock)
        {
            _latencyBuckets[i < 0 ? Buckets.Length : i]++;
            _latencyCount++;
            _latencySum += seconds;
        }
    }

    /// <param name="clicks">Requests to tracked links counted so far by every process, per verdict (from the database).</param>
    /// <param name="clicksDropped">Requests to tracked links this process could not queue for counting.</param>
    public string Write(long queueDepth, long pausedRuns, IReadOnlyList<(string Verdict, long Requests)>? clicks = null, long clicksDropped = 0)
    {
        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        sb.Append("# HELP newsletter_messages_total Messages handed to SMTP, by run kind and result.\n# TYPE newsletter_messages_total counter\n");
        foreach (var ((kind, result), count) in _messages.OrderBy(m => m.Key))
            sb.Append(c, $"newsletter_messages_total{{kind=\"{kind}\",result=\"{result}\"}} {count}\n");
        sb.Append("# HELP newsletter_bounces_total Bounces and complaints received after the handoff and recorded, by kind.\n# TYPE newsletter_bounces_total counter\n");
        foreach (var kind in new[] { "hard", "soft", "block", "complaint" })
            sb.Append(c, $"newsletter_bounces_total{{kind=\"{kind}\"}} {_bounces.GetValueOrDefault(kind)}\n");
        sb.Append("# HELP newsletter_reports_refused_total Reports and provider calls that changed nothing, by way in and reason.\n# TYPE newsletter_reports_refused_total counter\n");
        foreach (var ((source, reason), count) in _refused.OrderBy(r => r.Key))
            sb.Append(c, $"newsletter_reports_refused_total{{source=\"{source}\",reason=\"{reason}\"}} {count}\n");
        sb.Append(c, $"# HELP newsletter_retries_total Deliveries scheduled for another attempt.\n# TYPE newsletter_retries_total counter\nnewsletter_retries_total {Interlocked.Read(ref _retries)}\n");
        sb.Append(c, $"# HELP newsletter_lane_connections_total SMTP connections opened by lanes (first connections and reconnects).\n# TYPE newsletter_lane_connections_total counter\nnewsletter_lane_connections_total {Interlocked.Read(ref _connections)}\n");
        sb.Append(c, $"# HELP newsletter_queue_depth Deliveries waiting to be sent (queued or retrying, and released readers whose deliveries are still to be written) in runs that are sending.\n# TYPE newsletter_queue_depth gauge\nnewsletter_queue_depth {queueDepth}\n");
        sb.Append(c, $"# HELP newsletter_runs_paused Runs paused, by an operator or by the engine.\n# TYPE newsletter_runs_paused gauge\nnewsletter_runs_paused {pausedRuns}\n");
        sb.Append("# HELP newsletter_click_requests_total Requests to tracked links counted, by the filter's verdict (human, head, agent, too-soon, burst).\n# TYPE newsletter_click_requests_total counter\n");
        foreach (var (verdict, requests) in clicks ?? [])
            sb.Append(c, $"newsletter_click_requests_total{{verdict=\"{verdict}\"}} {requests}\n");
        sb.Append(c, $"# HELP newsletter_click_requests_dropped_total Requests to tracked links redirected but not counted (the counting queue was full).\n# TYPE newsletter_click_requests_dropped_total counter\nnewsletter_click_requests_dropped_total {clicksDropped}\n");
        sb.Append("# HELP newsletter_send_duration_seconds Time to hand one message to the SMTP server.\n# TYPE newsletter_send_duration_seconds histogram\n");
        lock (_latencyLock)
        {
            long cumulative = 0;
            for (var i = 0; i < Buckets.Length; i++)
            {
                cumulative += _latencyBuckets[i];
                sb.Append(c, $"newsletter_send_duration_seconds_bucket{{le=\"{Buckets[i]}\"}} {cumulative}\n");
            }
            sb.Append(c, $"newsletter_send_duration_seconds_bucket{{le=\"+Inf\"}} {_latencyCount}\n");
            sb.Append(c, $"newsletter_send_duration_seconds_sum {_latencySum}\nnewsletter_send_duration_seconds_count {_latencyCount}\n");
        }
        return sb.ToString();
    }
}
