using System.Threading.Channels;
using Dapper;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Subscribers;
using Npgsql;
using NpgsqlTypes;

namespace Newsletter.Tracking;

/// <summary>One request to a tracked link, as the redirect endpoint saw it.</summary>
public readonly record struct ClickRequest(ClickPlace Place, DateTimeOffset At, string Method, string Agent, string Verdict);

/// <summary>
/// Counts clicks in batches, never one insert per request: the redirect endpoint queues each
/// request in memory (<see cref="Record"/>) and answers at once; <see cref="RunAsync"/> writes the
/// queue with one COPY about every second, then settles what is due (<see cref="SettleAsync"/>):
/// GETs whose burst window has passed become human or burst, human requests learn whether they were
/// the reader's first of their link, paper and issue, and the counts grow by the batch. Raw requests
/// older than <c>Newsletter__Tracking__KeepRequests</c> are deleted; the counts stay.
/// </summary>
public sealed class ClickRecorder
{
    private const int MaxBatch = 20_000;
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private readonly NpgsqlDataSource _db;
    private readonly ClickTokens _tokens;
    private readonly TrackingOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger<ClickRecorder> _logger;
    private readonly Channel<ClickRequest> _queue = Channel.CreateBounded<ClickRequest>(
        new BoundedChannelOptions(500_000) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
    private DateTimeOffset _lastPrune;

    public ClickRecorder(NpgsqlDataSource db, ClickTokens tokens, IOptions<TrackingOptions> options, TimeProvider clock, ILogger<ClickRecorder> logger)
    {
        _db = db;
        _tokens = tokens;
        _options = options.Value;
        _clock = clock;
        _logger = logger;
    }

    private long _dropped;

    /// <summary>Requests this process could not queue (the queue was full): redirected, not counted.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Queues a request to be written with the next batch; false when the queue is full (the request is then not counted).</summary>
    public bool Record(in ClickRequest request)
    {
        if (_queue.Writer.TryWrite(request)) return true;
        Interlocked.Increment(ref _dropped);
        return false;
    }

    /// <summary>Writes and settles batches until <paramref name="ct"/> is cancelled, then writes what is left.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var batch = new List<ClickRequest>(1024);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Interval, _clock, ct);
            }
            catch (OperationCanceledException) { break; }
            await FlushAsync(batch, ct);
        }
        await FlushAsync(batch, CancellationToken.None);
    }

    private async Task FlushAsync(List<ClickRequest> batch, CancellationToken ct)
    {
        try
        {
            do
            {
                batch.Clear();
                while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var request)) batch.Add(request);
                if (batch.Count > 0) await WriteAsync(batch, ct);
            }
            while (batch.Count == MaxBatch);
            await SettleAsync(ct);
            if (_clock.GetUtcNow() - _lastPrune > TimeSpan.FromMinutes(10))
            {
                await PruneAsync(ct);
                _lastPrune = _clock.GetUtcNow();
            }
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException && !ct.IsCancellationRequested)
        {
            // The redirects go on; this batch's requests are not counted.
            _logger.LogWarning(e, "Writing {Count} click requests failed", batch.Count);
        }
    }

    /// <summary>Writes requests as they are, with one COPY.</summary>
    public async Task WriteAsync(IReadOnlyList<ClickRequest> batch, CancellationToken ct = default)
    {
        var perSubscriber = _options.Mode == ClickTrackingMode.PerSubscriber;
        await using var connection = await _db.OpenConnectionAsync(ct);
        await using var copy = await connection.BeginBinaryImportAsync(
            "copy click_requests (at, reader, delivery_id, issue_id, item, link, language, cadence, method, agent, verdict) from stdin (format binary)", ct);
        foreach (var r in batch)
        {
            await copy.StartRowAsync(ct);
            await copy.WriteAsync(r.At.UtcDateTime, NpgsqlDbType.TimestampTz, ct);
            await copy.WriteAsync(_tokens.Reader(r.Place.DeliveryId), NpgsqlDbType.Bytea, ct);
            if (perSubscriber) await copy.WriteAsync(r.Place.DeliveryId, NpgsqlDbType.Bigint, ct);
            else await copy.WriteNullAsync(ct);
            await copy.WriteAsync(r.Place.IssueId, NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync((short)r.Place.Item, NpgsqlDbType.Smallint, ct);
            await copy.WriteAsync((short)r.Place.Link, NpgsqlDbType.Smallint, ct);
            await copy.WriteAsync(Wire.Name(r.Place.Language), NpgsqlDbType.Text, ct);
            await copy.WriteAsync(Wire.Name(r.Place.Cadence), NpgsqlDbType.Text, ct);
            await copy.WriteAsync(r.Method.Length <= 10 ? r.Method : r.Method[..10], NpgsqlDbType.Text, ct);
            await copy.WriteAsync(r.Agent.Length <= 300 ? r.Agent : r.Agent[..300], NpgsqlDbType.Text, ct);
            await copy.WriteAsync(r.Verdict, NpgsqlDbType.Text, ct);
        }
        await copy.CompleteAsync(ct);
    }

    /// <summary>
    /// Gives the GETs whose burst window has passed their verdict and adds every request with a
    /// final verdict to the counts, once (in one transaction; one process at a time).
    /// </summary>
    /// <returns>How many requests were counted.</returns>
    public async Task<int> SettleAsync(CancellationToken ct = default)
    {
        var now = _clock.GetUtcNow();
        await using var connection = await _db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        if (!await connection.ExecuteScalarAsync<bool>(new CommandDefinition(
                "select pg_try_advisory_xact_lock(hashtext('newsletter/click-settle'))", transaction: tx, cancellationToken: ct)))
            return 0;
        var args = new
        {
            cutoff = (now - ClickFilter.BurstWindow).UtcDateTime,
            window = ClickFilter.BurstWindow,
            burstLinks = ClickFilter.BurstLinks,
            pending = ClickFilter.Pending,
            human = ClickFilter.Human,
            burst = ClickFilter.Burst,
        };
        // A GET is part of a burst when its message's links, this many different ones or more, were
        // requested within the window either side of it.
        await connection.ExecuteAsync(new CommandDefinition("""
            update click_requests p set verdict = case when (
                    select count(distinct (o.issue_id, o.item, o.link)) from click_requests o
                    where o.reader = p.reader and o.at between p.at - @window and p.at + @window) >= @burstLinks
                then @burst else @human end
            where not p.counted and p.verdict = @pending and p.at <= @cutoff
            """, args, tx, cancellationToken: ct));
        // Whether each new human request was its reader's first of the link, of the paper, of the issue
        // (among the requests still kept).
        await connection.ExecuteAsync(new CommandDefinition("""
            update click_requests p set
                first_link = not exists (select 1 from click_requests o where o.reader = p.reader and o.verdict = @human
                    and o.issue_id = p.issue_id and o.item = p.item and o.link = p.link and (o.at, o.id) < (p.at, p.id)),
                first_paper = not exists (select 1 from click_requests o where o.reader = p.reader and o.verdict = @human
                    and o.issue_id = p.issue_id and o.item = p.item and (o.at, o.id) < (p.at, p.id)),
                first_issue = not exists (select 1 from click_requests o where o.reader = p.reader and o.verdict = @human
                    and o.issue_id = p.issue_id and (o.at, o.id) < (p.at, p.id))
            where not p.counted and p.verdict = @human
            """, args, tx, cancellationToken: ct));
        await connection.ExecuteAsync(new CommandDefinition("""
            insert into clicks (subscriber_id, issue_id, item, link, first_at)
            select d.subscriber_id, c.issue_id, c.item, c.link, min(c.at)
            from click_requests c join deliveries d on d.id = c.delivery_id
            where not c.counted and c.verdict = @human and c.delivery_id is not null
            group by d.subscriber_id, c.issue_id, c.item, c.link
            on conflict do nothing
            """, args, tx, cancellationToken: ct));
        await connection.ExecuteAsync(new CommandDefinition("""
            insert into click_counts (issue_id, item, link, language, cadence, verdict, requests, clickers, paper_clickers, issue_clickers)
            select c.issue_id, c.item, c.link, c.language, c.cadence, c.verdict, count(*),
                   count(*) filter (where c.first_link), count(*) filter (where c.first_paper), count(*) filter (where c.first_issue)
            from click_requests c join issues i on i.id = c.issue_id
            where not c.counted and c.verdict <> @pending
            group by c.issue_id, c.item, c.link, c.language, c.cadence, c.verdict
            on conflict (issue_id, item, link, language, cadence, verdict) do update set
                requests = click_counts.requests + excluded.requests,
                clickers = click_counts.clickers + excluded.clickers,
                paper_clickers = click_counts.paper_clickers + excluded.paper_clickers,
                issue_clickers = click_counts.issue_clickers + excluded.issue_clickers
            """, args, tx, cancellationToken: ct));
        var counted = await connection.ExecuteAsync(new CommandDefinition(
            "update click_requests set counted = true where not counted and verdict <> @pending", args, tx, cancellationToken: ct));
        await tx.CommitAsync(ct);
        return counted;
    }

    /// <summary>Deletes the raw requests older than <c>Newsletter__Tracking__KeepRequests</c> that are counted.</summary>
    public async Task<int> PruneAsync(CancellationToken ct = default)
    {
        await using var connection = await _db.OpenConnectionAsync(ct);
        return await connection.ExecuteAsync(new CommandDefinition(
            "delete from click_requests where counted and at < @before",
            new { before = (_clock.GetUtcNow() - _options.KeepRequests).UtcDateTime }, cancellationToken: ct));
    }
}
