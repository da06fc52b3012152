using System.Buffers;
using System.Net;
using System.Threading.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MimeKit;
using Newsletter.Configuration;
using SmtpServer;
using SmtpServer.ComponentModel;
using SmtpServer.Mail;
using SmtpServer.Net;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace Newsletter.Bounces;

/// <summary>
/// A small SMTP endpoint (the SmtpServer package) on <c>Newsletter__Bounces__Listen</c> that an MTA
/// hands bounces to: it takes mail only for <c>Newsletter__Bounces__Domain</c>, at most
/// <c>MaxMessageBytes</c> a message and <c>MessagesPerMinute</c> per client address, and answers
/// 250 only once the report is processed and committed (a failure of ours is a 451, so the MTA
/// keeps the bounce and tries again; reprocessing is idempotent). A report that cannot be read is
/// accepted and dropped with a log line: retrying it would not make it readable.
/// </summary>
public sealed class BounceSmtpEndpoint(IOptions<BounceOptions> options, BounceProcessor processor, ILogger<BounceSmtpEndpoint> logger,
    Newsletter.Delivery.DeliveryMetrics? metrics = null) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        var endpoint = IPEndPoint.Parse(o.Listen!);
        var server = new SmtpServer.SmtpServer(
            new SmtpServerOptionsBuilder()
                .ServerName(o.Domain!)
                .MaxMessageSize(o.MaxMessageBytes)
                .MaxRetryCount(3)
                .CommandWaitTimeout(TimeSpan.FromMinutes(2))
                .Endpoint(e => e.Endpoint(endpoint))
                .Build(),
            Services(o));
        logger.LogInformation("Taking bounces for {Domain} by SMTP on {Endpoint}", o.Domain, endpoint);
        try
        {
            await server.StartAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { }
    }

    private SmtpServer.ComponentModel.ServiceProvider Services(BounceOptions o)
    {
        var limiter = PartitionedRateLimiter.Create<string, string>(address => RateLimitPartition.GetFixedWindowLimiter(address,
            _ => new FixedWindowRateLimiterOptions { PermitLimit = o.MessagesPerMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));
        var services = new SmtpServer.ComponentModel.ServiceProvider();
        services.Add(new DomainFilter(o.Domain!, limiter, metrics));
        services.Add(new Store(processor, logger, metrics));
        return services;
    }

    private static string ClientAddress(ISessionContext context) =>
        (context.Properties.TryGetValue(EndpointListener.RemoteEndPointKey, out var remote) ? (remote as IPEndPoint)?.Address.ToString() : null) ?? "unknown";

    /// <summary>Mail for the bounce domain only, and not faster than the limit per client address.</summary>
    private sealed class DomainFilter(string domain, PartitionedRateLimiter<string> limiter, Newsletter.Delivery.DeliveryMetrics? metrics) : IMailboxFilter
    {
        public Task<bool> CanAcceptFromAsync(ISessionContext context, IMailbox from, int size, CancellationToken cancellationToken)
        {
            using var lease = limiter.AttemptAcquire(ClientAddress(context));
            if (!lease.IsAcquired)
            {
                metrics?.ReportRefused("smtp", "rate-limited");
                throw new SmtpResponseException(new SmtpResponse(SmtpReplyCode.ServiceUnavailable, "4.7.0 Too many messages, slow down"), true);
            }
            return Task.FromResult(true);
        }

        public Task<bool> CanDeliverToAsync(ISessionContext context, IMailbox to, IMailbox from, CancellationToken cancellationToken)
        {
            var ours = string.Equals(to.Host, domain, StringComparison.OrdinalIgnoreCase);
            if (!ours) metrics?.ReportRefused("smtp", "wrong-domain");
            return Task.FromResult(ours);
        }
    }

    private sealed class Store(BounceProcessor processor, ILogger logger, Newsletter.Delivery.DeliveryMetrics? metrics) : MessageStore
    {
        public override async Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer,
            CancellationToken cancellationToken)
        {
            MimeMessage message;
            try
            {
                using var stream = new MemoryStream(buffer.ToArray());
                message = await BounceParser.LoadAsync(stream, cancellationToken);
            }
            catch (FormatException e)
            {
                logger.LogWarning("A message from {Client} is not a readable report ({Reason}); dropped", ClientAddress(context), e.Message);
                metrics?.ReportRefused("smtp", "unreadable");
                return SmtpResponse.Ok;
            }
            try
            {
                var recipients = transaction.To.Select(t => $"{t.User}@{t.Host}").ToList();
                var result = await processor.ProcessAsync(message, recipients, BounceSource.Smtp, cancellationToken);
                logger.LogInformation("Report from {Client} to {Recipient}: {Outcome}", ClientAddress(context), recipients.FirstOrDefault(), result.Outcome);
                return SmtpResponse.Ok;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogError(e, "A report from {Client} could not be processed; the sender will retry", ClientAddress(context));
                return new SmtpResponse(SmtpReplyCode.Aborted, "4.3.0 Try again later");
            }
        }
    }
}

public static class BounceServices
{
    /// <summary>The ways bounces come in: the SMTP endpoint (<c>Newsletter__Bounces__Listen</c>) and the mailbox (<c>Newsletter__Bounces__Mailbox__Host</c>), each when configured.</summary>
    public static IHostApplicationBuilder AddNewsletterBounces(this IHostApplicationBuilder builder)
    {
        if (!string.IsNullOrWhiteSpace(builder.Configuration[$"{BounceOptions.Section}:Listen"]))
            builder.Services.AddHostedService<BounceSmtpEndpoint>();
        if (!string.IsNullOrWhiteSpace(builder.Configuration[$"{BounceMailboxOptions.Section}:Host"]))
            builder.Services.AddHostedService<BounceMailbox>();
        return builder;
    }
}
