using MailKit.Net.Smtp;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MimeKit;
using Newsletter.Bounces;
using Newsletter.Configuration;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Bounces;

/// <summary>The SMTP endpoint for bounces under a flood and when our side fails: it slows senders down and never loses a report.</summary>
public sealed class BounceEndpointLimitsTests
{
    private const string BounceDomain = "bounces.example.org";

    [Fact]
    public async Task A_flood_gets_421_and_a_report_that_cannot_be_stored_gets_451_so_the_MTA_keeps_it()
    {
        await using var db = await TestDatabase.CreateAsync();
        var port = LoopbackPort.Free();
        var options = new BounceOptions { Domain = BounceDomain, Listen = $"127.0.0.1:{port}", MessagesPerMinute = 3 };
        var services = db.Services(bounces: options);
        using var endpoint = new BounceSmtpEndpoint(Options.Create(options), services.GetRequiredService<BounceProcessor>(), NullLogger<BounceSmtpEndpoint>.Instance);
        await endpoint.StartAsync(CancellationToken.None);
        try
        {
            using var client = new SmtpClient();
            for (var i = 0; ; i++)
            {
                try { await client.ConnectAsync("127.0.0.1", port, MailKit.Security.SecureSocketOptions.None); break; }
                catch (System.Net.Sockets.SocketException) when (i < 100) { await Task.Delay(100); }
            }
            var nobody = MailboxAddress.Parse($"nobody@{BounceDomain}");
            var daemon = MailboxAddress.Parse("MAILER-DAEMON@relay.example.org");
            // Two reports that name no delivery: accepted (and ignored).
            for (var i = 0; i < 2; i++) await client.SendAsync(TestReports.Dsn(nobody.Address, "someone@example.net"), daemon, [nobody]);

            // Our side fails (the ledger is unreachable): 451, a temporary failure, so the MTA keeps the report and retries.
            await using (var connection = await db.DataSource.OpenConnectionAsync())
            await using (var command = new Npgsql.NpgsqlCommand("alter table deliveries rename to deliveries_elsewhere", connection))
                await command.ExecuteNonQueryAsync();
            var returnPath = MailboxAddress.Parse(services.GetRequiredService<DeliveryKeys>().ReturnPath(1, BounceDomain));
            var failure = await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(TestReports.Dsn(returnPath.Address, "someone@example.net"), daemon, [returnPath]));
            Assert.Equal(451, (int)failure.StatusCode);

            // The fourth message within the minute from this address: 421, slow down.
            if (!client.IsConnected) await client.ConnectAsync("127.0.0.1", port, MailKit.Security.SecureSocketOptions.None);
            var flood = await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(TestReports.Dsn(nobody.Address, "someone@example.net"), daemon, [nobody]));
            Assert.Equal(421, (int)flood.StatusCode);
        }
        finally
        {
            await endpoint.StopAsync(CancellationToken.None);
        }
    }
}
