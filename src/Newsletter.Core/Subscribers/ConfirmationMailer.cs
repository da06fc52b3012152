using System.Text;
using Dapper;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MimeKit;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Digests;
using Npgsql;

namespace Newsletter.Subscribers;

/// <summary>The words of the confirmation mail.</summary>
public sealed record ConfirmationStrings(string Lang, string Subject, string Heading, string Body, string Button, string Ignore)
{
    public static readonly ConfirmationStrings Ko = new("ko",
        "구독을 확인해 주세요", "구독 확인",
        "아래 버튼을 눌러 뉴스레터 구독을 확인해 주세요. 확인한 뒤부터 메일을 보내 드립니다.",
        "구독 확인하기", "직접 신청하지 않으셨다면 이 메일을 무시하세요. 확인하지 않으면 아무 메일도 보내지 않습니다.");

    public static readonly ConfirmationStrings En = new("en",
        "Please confirm your subscription", "Confirm your subscription",
        "Press the button below to confirm your subscription. We will only mail you once you have confirmed.",
        "Confirm subscription", "If you did not sign up, ignore this mail: without confirmation we send nothing.");

    public static ConfirmationStrings For(Language language) => language == Language.En ? En : Ko;
}

/// <summary>The model of <c>templates/email/Confirmation.cshtml</c>.</summary>
public sealed record ConfirmationView(string NewsletterName, string ConfirmUrl, IReadOnlyList<ConfirmationStrings> Versions);

/// <summary>
/// Sends the confirmation mails that sign-ups made due, in the background (so the sign-up page
/// answers the same, and as fast, for every address). Which mails are due lives in the database:
/// a restart loses none, and several service processes never send one twice.
/// </summary>
public sealed class ConfirmationMailer(
    NpgsqlDataSource db,
    Subscriptions subscriptions,
    LinkSigner signer,
    TemplateEngine templates,
    DkimSigning dkim,
    IMailTransport transport,
    IOptions<NewsletterOptions> newsletter,
    IOptions<SmtpOptions> smtp,
    TimeProvider clock,
    ILogger<ConfirmationMailer> logger) : BackgroundService
{
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(15);
    private readonly SemaphoreSlim _wake = new(0);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        subscriptions.ConfirmationDue += Wake;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    while (await SendDueAsync(stoppingToken) > 0) { }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogError(e, "Sending confirmation mails failed; trying again shortly");
                }
                try { await _wake.WaitAsync(Poll, stoppingToken); }
                catch (OperationCanceledException) { return; }
            }
        }
        finally
        {
            subscriptions.ConfirmationDue -= Wake;
        }
    }

    private void Wake() => _wake.Release();

    /// <summary>Sends up to a batch of due confirmation mails; returns how many were due.</summary>
    public async Task<int> SendDueAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        List<Pending> due;
        await using (var connection = await db.OpenConnectionAsync(ct))
        {
            due = (await connection.QueryAsync<Pending>(new CommandDefinition("""
                with due as (
                    select id, confirmation_sent_at as previous from subscribers
                    where status = 'pending' and confirmation_requested_at is not null
                      and (confirmation_sent_at is null or confirmation_sent_at < confirmation_requested_at)
                    order by confirmation_requested_at
                    limit 20
                    for update skip locked
                )
                update subscribers s set confirmation_sent_at = @now
                from due where s.id = due.id
                returning s.id, s.public_id, s.email, s.name, s.language, due.previous
                """, new { now }, cancellationToken: ct))).ToList();
        }
        if (due.Count == 0) return 0;

        var from = newsletter.Value.FromMailbox;
        var sender = string.IsNullOrWhiteSpace(smtp.Value.ReturnPath) ? from : new MailboxAddress("", smtp.Value.ReturnPath);
        await using var lane = transport.OpenLane();
        foreach (var pending in due)
        {
            var message = await BuildAsync(pending, from);
            var outcome = await lane.SendAsync(message, sender, new MailboxAddress(pending.Name ?? "", pending.Email), ct);
            if (outcome.Result == SendResult.Sent)
            {
                logger.LogInformation("Confirmation mail sent to subscriber {SubscriberId}", pending.Id);
                continue;
            }
            logger.LogWarning("Confirmation mail to subscriber {SubscriberId} not sent: {Reply}", pending.Id, outcome.Reply);
            if (outcome.Result is SendResult.Retry or SendResult.PauseRun)
            {
                // Not sent: due again at the next round (the sign-up interval counts from a mail actually sent).
                await using var connection = await db.OpenConnectionAsync(ct);
                await connection.ExecuteAsync(new CommandDefinition(
                    "update subscribers set confirmation_sent_at = @Previous where id = @Id and confirmation_sent_at = @now",
                    new { pending.Previous, pending.Id, now }, cancellationToken: ct));
                return 0; // the mail server is unhappy: wait for the next poll
            }
        }
        return due.Count;
    }

    private async Task<MimeMessage> BuildAsync(Pending pending, MailboxAddress from)
    {
        var language = Wire.Parse<Language>("language", pending.Language);
        var versions = language == Language.Both ? new[] { ConfirmationStrings.Ko, ConfirmationStrings.En } : [ConfirmationStrings.For(language)];
        var url = $"{newsletter.Value.PublicUrl.TrimEnd('/')}/confirm/{signer.Create(LinkPurpose.Confirm, pending.PublicId, clock.GetUtcNow())}";
        var name = DigestRenderer.NewsletterName(newsletter.Value);
        var html = await templates.RenderAsync("email/Confirmation", new ConfirmationView(name, url, versions));
        var text = new StringBuilder();
        foreach (var v in versions)
            text.Append(v.Heading).Append("\n\n").Append(v.Body).Append("\n\n").Append(url).Append("\n\n").Append(v.Ignore).Append("\n\n");

        var message = new MimeMessage();
        message.From.Add(from);
        if (!string.IsNullOrWhiteSpace(newsletter.Value.ReplyTo)) message.ReplyTo.Add(MailboxAddress.Parse(newsletter.Value.ReplyTo));
        message.To.Add(new MailboxAddress(pending.Name ?? "", pending.Email));
        message.Subject = string.Join(" / ", versions.Select(v => v.Subject));
        message.Date = clock.GetUtcNow();
        message.MessageId = MimeKit.Utils.MimeUtils.GenerateMessageId(from.Domain);
        message.Headers.Add("Auto-Submitted", "auto-generated");
        message.Body = new MultipartAlternative
        {
            new TextPart("plain") { Text = text.ToString().TrimEnd() + "\n" },
            new TextPart("html") { Text = html },
        };
        message.Prepare(EncodingConstraint.SevenBit);
        dkim.Sign(message);
        return message;
    }

    private sealed class Pending
    {
        public long Id { get; init; }
        public Guid PublicId { get; init; }
        public string Email { get; init; } = "";
        public string? Name { get; init; }
        public string Language { get; init; } = "ko";
        public DateTime? Previous { get; init; }
    }
}
