using MailKit;
using MailKit.Net.Imap;
using MailKit.Net.Pop3;
using MailKit.Search;
using MailKit.Security;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MimeKit;
using Newsletter.Configuration;

namespace Newsletter.Bounces;

/// <summary>
/// Reads bounces and complaints from a mailbox (<c>Newsletter__Bounces__Mailbox__*</c>) with MailKit:
/// IMAP, waiting with IDLE where the server offers it and polling otherwise, or POP3. A message is
/// deleted only after its report is processed and committed; a crash in between leaves it in the
/// mailbox, and reading it again changes nothing (the processor counts a report once). A message
/// that is not a readable report is deleted with a log line; one that fails on our side (the
/// database) stays for the next round.
/// </summary>
public sealed class BounceMailbox(IOptions<BounceMailboxOptions> options, BounceProcessor processor, ILogger<BounceMailbox> logger,
    Newsletter.Delivery.DeliveryMetrics? metrics = null) : BackgroundService
{
    /// <summary>Messages read per round; a bigger backlog is worked through round by round.</summary>
    private const int Batch = 200;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        logger.LogInformation("Reading bounces from {Protocol} {Host}:{Port}", o.Protocol, o.Host, o.ResolvedPort);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (o.Protocol == MailboxProtocol.Pop3) await ReadPop3Async(o, stoppingToken);
                else await ReadImapAsync(o, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning("Reading the bounce mailbox failed ({Reason}); trying again in {Interval}", e.Message, o.PollInterval);
            }
            try { await Task.Delay(o.PollInterval, stoppingToken); }
            catch (OperationCanceledException) { return; }
        }
    }

    private static SecureSocketOptions Security(BounceMailboxOptions o) => o.Security switch
    {
        SmtpSecurity.SslOnConnect => SecureSocketOptions.SslOnConnect,
        SmtpSecurity.StartTls => SecureSocketOptions.StartTls,
        _ => SecureSocketOptions.None,
    };

    /// <summary>Stays connected: reads what is there, then waits (IDLE or the poll interval) and reads again.</summary>
    private async Task ReadImapAsync(BounceMailboxOptions o, CancellationToken ct)
    {
        using var client = new ImapClient { Timeout = 60_000 };
        await client.ConnectAsync(o.Host!, o.ResolvedPort, Security(o), ct);
        await client.AuthenticateAsync(o.Username!, o.Password!, ct);
        var folder = await client.GetFolderAsync(o.Folder, ct);
        await folder.OpenAsync(FolderAccess.ReadWrite, ct);
        while (!ct.IsCancellationRequested)
        {
            var uids = await folder.SearchAsync(SearchQuery.NotDeleted, ct);
            foreach (var uid in uids.Take(Batch))
            {
                var message = await TryLoadAsync(() => folder.GetStreamAsync(uid, ct));
                if (message is null || await TryProcessAsync(message, ct))
                    await folder.AddFlagsAsync(uid, MessageFlags.Deleted | MessageFlags.Seen, silent: true, ct);
            }
            if (uids.Count > 0) await folder.ExpungeAsync(ct);
            if (uids.Count > Batch) continue;
            if (client.Capabilities.HasFlag(ImapCapabilities.Idle))
            {
                // IDLE until something arrives or the interval ends (servers drop an IDLE after ~30 min).
                using var done = CancellationTokenSource.CreateLinkedTokenSource(ct);
                done.CancelAfter(o.PollInterval);
                void Arrived(object? sender, EventArgs e) => done.Cancel();
                folder.CountChanged += Arrived;
                try { await client.IdleAsync(done.Token, ct); }
                finally { folder.CountChanged -= Arrived; }
            }
            else
            {
                await Task.Delay(o.PollInterval, ct);
                await client.NoOpAsync(ct);
            }
        }
    }

    /// <summary>One round: read every message, delete the processed ones, and QUIT (which commits the deletes).</summary>
    private async Task ReadPop3Async(BounceMailboxOptions o, CancellationToken ct)
    {
        using var client = new Pop3Client { Timeout = 60_000 };
        await client.ConnectAsync(o.Host!, o.ResolvedPort, Security(o), ct);
        await client.AuthenticateAsync(o.Username!, o.Password!, ct);
        var count = Math.Min(client.Count, Batch);
        for (var i = 0; i < count; i++)
        {
            var index = i;
            var message = await TryLoadAsync(() => client.GetStreamAsync(index, false, ct));
            if (message is null || await TryProcessAsync(message, ct)) await client.DeleteMessageAsync(i, ct);
        }
        await client.DisconnectAsync(quit: true, ct);
    }

    /// <summary>The message, or null when it is not a readable message (it is then deleted).</summary>
    private async Task<MimeMessage?> TryLoadAsync(Func<Task<Stream>> open)
    {
        await using var stream = await open();
        try
        {
            return await BounceParser.LoadAsync(stream);
        }
        catch (FormatException e)
        {
            logger.LogWarning("A message in the bounce mailbox is not readable ({Reason}); deleted", e.Message);
            metrics?.ReportRefused("mailbox", "unreadable");
            return null;
        }
    }

    /// <summary>True when the report's outcome is committed (or it was nothing to us), so the message may go.</summary>
    private async Task<bool> TryProcessAsync(MimeMessage message, CancellationToken ct)
    {
        try
        {
            var result = await processor.ProcessAsync(message, [], BounceSource.Mailbox, ct);
            logger.LogInformation("Mailbox report {Subject}: {Outcome}", message.Subject, result.Outcome);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError(e, "A report in the bounce mailbox could not be processed; it stays for the next round");
            return false;
        }
    }
}
