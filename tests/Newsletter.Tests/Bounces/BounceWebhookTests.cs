using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Bounces;

/// <summary>
/// <c>POST /webhooks/{provider}</c> against the running service, for digests it really sent: Amazon
/// SES through SNS (signed with a certificate of our own, configured as the SNS signer), Postmark
/// (basic auth) and Mailgun (HMAC). Unauthentic calls get 401, replays 409, and neither changes anything.
/// </summary>
public sealed class BounceWebhookTests
{
    private static StringContent Json(string json, string type = "application/json") =>
        new(json, Encoding.UTF8) { Headers = { ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(type) } };

    private sealed record Sent(string Email, string MessageId, string MailFrom, System.Collections.Generic.IReadOnlyList<string> Metadata);

    /// <summary>Starts the service with <paramref name="settings"/>, sends the daily digest to the readers, and returns what each got.</summary>
    private static async Task<(ServiceProcess Service, Dictionary<string, Sent> Sent, long RunId)> SendAsync(TestDatabase db, TestSmtpServer smtp,
        Dictionary<string, string?> settings, params string[] readers)
    {
        await db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        foreach (var reader in readers) await db.Subscribers().AddActiveAsync(new NewSubscriber(reader, null, Cadence.Daily, Language.En));
        foreach (var (key, value) in ServiceProcess.SendingTo(smtp)) settings[key] = value;
        var service = await ServiceProcess.StartAsync(db, settings);
        using var admin = service.Admin();
        var run = JsonDocument.Parse(await (await admin.PostAsync("/api/sends", Json("""{"cadence":"daily"}"""))).Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetInt64();
        await ServiceProcess.WaitForRunAsync(admin, run);
        var sent = smtp.Messages.ToDictionary(m => m.Recipients[0], m =>
        {
            var message = m.Message;
            return new Sent(m.Recipients[0], message.MessageId!, m.MailFrom, message.Headers.Where(h => h.Field == "X-PM-Metadata-newsletter-delivery").Select(h => h.Value.Trim()).ToList());
        });
        return (service, sent, run);
    }

    private static async Task<string> StatusOf(TestDatabase db, string email) =>
        (await db.ScalarAsync<string>($"select status from subscribers where email = '{email}'"))!;

    private static async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(HttpClient http, string path, string body, string type = "application/json")
    {
        using var response = await http.PostAsync(path, Json(body, type));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length > 0 ? JsonDocument.Parse(text).RootElement.Clone() : default);
    }

    // ---- Amazon SES through SNS ---------------------------------------------------------------------

    private const string Topic = "arn:aws:sns:eu-west-1:123456789012:newsletter-bounces";

    /// <summary>An SNS message as SNS posts it, signed with <paramref name="signer"/> (SignatureVersion 1 or 2).</summary>
    private static string Sns(RSA signer, string type, string message, DateTimeOffset at, string? subscribeUrl = null, string topic = Topic, string version = "2",
        Func<string, string>? tamper = null)
    {
        var fields = new JsonObject
        {
            ["Type"] = type, ["MessageId"] = Guid.NewGuid().ToString(), ["TopicArn"] = topic, ["Message"] = message,
            ["Timestamp"] = at.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ"), ["SignatureVersion"] = version,
            ["SigningCertURL"] = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
        };
        if (type == "Notification") fields["Subject"] = "Amazon SES Email Event Notification";
        else { fields["Token"] = "2336412f37fb687f5d51e6e2425f004aed"; fields["SubscribeURL"] = subscribeUrl; }
        var names = type == "Notification"
            ? new[] { "Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type" }
            : ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"];
        var signed = string.Concat(names.Select(n => $"{n}\n{(string)fields[n]!}\n"));
        fields["Signature"] = Convert.ToBase64String(signer.SignData(Encoding.UTF8.GetBytes(signed), version == "1" ? HashAlgorithmName.SHA1 : HashAlgorithmName.SHA256,
            RSASignaturePadding.Pkcs1));
        var json = fields.ToJsonString();
        return tamper is null ? json : tamper(json);
    }

    private static string SesBounce(Sent sent, string bounceType, string subType, string status, string diagnostic) => new JsonObject
    {
        ["notificationType"] = "Bounce",
        ["bounce"] = new JsonObject
        {
            ["bounceType"] = bounceType, ["bounceSubType"] = subType, ["feedbackId"] = Guid.NewGuid().ToString(), ["timestamp"] = "2026-12-04T09:00:00.000Z",
            ["bouncedRecipients"] = new JsonArray(new JsonObject { ["emailAddress"] = sent.Email, ["action"] = "failed", ["status"] = status, ["diagnosticCode"] = diagnostic }),
        },
        ["mail"] = new JsonObject
        {
            ["messageId"] = "0100018c-ses-id", ["source"] = "digest@example.org",
            ["commonHeaders"] = new JsonObject { ["messageId"] = $"<{sent.MessageId}>" },
        },
    }.ToJsonString();

    private static string SesComplaint(Sent sent) => new JsonObject
    {
        ["notificationType"] = "Complaint",
        ["complaint"] = new JsonObject { ["complaintFeedbackType"] = "abuse", ["complainedRecipients"] = new JsonArray(new JsonObject { ["emailAddress"] = sent.Email }) },
        ["mail"] = new JsonObject { ["headers"] = new JsonArray(new JsonObject { ["name"] = "Message-ID", ["value"] = $"<{sent.MessageId}>" }) },
    }.ToJsonString();

    [Fact]
    public async Task Amazon_SES_notifications_signed_by_SNS_bounce_and_unsubscribe_and_forged_or_replayed_ones_change_nothing()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var smtp = new TestSmtpServer();
        using var signer = RSA.Create(2048);
        using var impostor = RSA.Create(2048);
        var certificate = new CertificateRequest("CN=sns.eu-west-1.amazonaws.com", signer, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        var pem = Path.Combine(NewsletterProcess.TempDirectory(), "sns.pem");
        await File.WriteAllTextAsync(pem, certificate.ExportCertificatePem());

        // Where SNS would have the subscription confirmed.
        var confirmPort = LoopbackPort.Free();
        using var confirmations = new HttpListener { Prefixes = { $"http://127.0.0.1:{confirmPort}/" } };
        confirmations.Start();
        var confirmed = new List<string>();
        _ = Task.Run(async () =>
        {
            while (confirmations.IsListening)
            {
                try
                {
                    var call = await confirmations.GetContextAsync();
                    lock (confirmed) confirmed.Add(call.Request.Url!.PathAndQuery);
                    call.Response.StatusCode = 200;
                    call.Response.Close();
                }
                catch (Exception) { return; }
            }
        });

        var settings = new Dictionary<string, string?>
        {
            ["Newsletter__Webhooks__Ses__Certificate"] = pem,
            ["Newsletter__Webhooks__Ses__TopicArn"] = $"arn:aws:sns:us-east-1:123456789012:other, {Topic}",
            ["Newsletter__Webhooks__MaxBodyBytes"] = "20000",
        };
        var (service, sent, runId) = await SendAsync(db, smtp, settings, "gone@example.net", "annoyed@example.net", "full@example.net", "here@example.net");
        await using var running = service;
        var http = service.Http;
        var now = DateTimeOffset.UtcNow;

        // The subscription is confirmed by fetching the signed SubscribeURL.
        var subscribe = $"http://127.0.0.1:{confirmPort}/confirm?Action=ConfirmSubscription&Token=2336412f37fb687f5d51e6e2425f004aed";
        var (status, _) = await PostAsync(http, "/webhooks/ses", Sns(signer, "SubscriptionConfirmation", "You have chosen to subscribe", now, subscribe, version: "1"), "text/plain; charset=UTF-8");
        Assert.Equal(HttpStatusCode.OK, status);
        lock (confirmed) Assert.Equal(["/confirm?Action=ConfirmSubscription&Token=2336412f37fb687f5d51e6e2425f004aed"], confirmed);

        // Forged: signed by another key; a field changed after signing; signed for a topic we do not take. 401, nothing changes.
        var bounce = SesBounce(sent["gone@example.net"], "Permanent", "General", "5.1.1", "smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown");
        foreach (var forged in new[]
        {
            Sns(impostor, "Notification", bounce, now),
            Sns(signer, "Notification", bounce, now, tamper: j => j.Replace("gone@example.net", "here@example.net")),
            Sns(signer, "Notification", bounce, now, topic: "arn:aws:sns:eu-west-1:999999999999:someone-elses"),
        })
            Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync(http, "/webhooks/ses", forged, "text/plain; charset=UTF-8")).Status);
        // Signed, but two hours old: a replay.
        Assert.Equal(HttpStatusCode.Conflict, (await PostAsync(http, "/webhooks/ses", Sns(signer, "Notification", bounce, now.AddHours(-2)), "text/plain; charset=UTF-8")).Status);
        Assert.Equal("active", await StatusOf(db, "gone@example.net"));
        Assert.Equal("active", await StatusOf(db, "here@example.net"));
        Assert.Equal(0L, await db.ScalarAsync<long>("select count(*) from bounce_events"));

        // The real one: the subscriber is bounced, with the status on the delivery.
        var real = Sns(signer, "Notification", bounce, now);
        var (ok, answer) = await PostAsync(http, "/webhooks/ses", real, "text/plain; charset=UTF-8");
        Assert.Equal(HttpStatusCode.OK, ok);
        Assert.Equal(1, answer.GetProperty("applied").GetInt32());
        Assert.Equal("bounced", await StatusOf(db, "gone@example.net"));
        using var admin = service.Admin();
        Assert.Contains("bounced after delivery: 5.1.1 userunknown", await admin.GetStringAsync($"/api/sends/{runId}/deliveries"));
        // The same call again: 409, counted once.
        Assert.Equal(HttpStatusCode.Conflict, (await PostAsync(http, "/webhooks/ses", real, "text/plain; charset=UTF-8")).Status);
        Assert.Equal(1L, await db.ScalarAsync<long>("select count(*) from bounce_events"));

        // A complaint unsubscribes and suppresses; a transient "mailbox full" is only counted.
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(http, "/webhooks/ses", Sns(signer, "Notification", SesComplaint(sent["annoyed@example.net"]), now))).Status);
        Assert.Equal("unsubscribed", await StatusOf(db, "annoyed@example.net"));
        Assert.Equal(1L, await db.ScalarAsync<long>("select count(*) from suppressions where reason = 'complaint'"));
        var full = SesBounce(sent["full@example.net"], "Transient", "MailboxFull", "4.2.2", "smtp; 452 4.2.2 Mailbox full");
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(http, "/webhooks/ses", Sns(signer, "Notification", full, now))).Status);
        Assert.Equal("active", await StatusOf(db, "full@example.net"));
        Assert.Equal("soft", await db.ScalarAsync<string>("select kind from bounce_events b join subscribers s on s.id = b.subscriber_id where s.email = 'full@example.net'"));
        // A notification about an address of ours under another delivery's Message-ID: unmatched.
        var crossed = SesBounce(sent["here@example.net"] with { MessageId = sent["gone@example.net"].MessageId }, "Permanent", "General", "5.1.1", "smtp; 550 5.1.1 unknown");
        var (_, crossedAnswer) = await PostAsync(http, "/webhooks/ses", Sns(signer, "Notification", crossed, now));
        Assert.Equal(1, crossedAnswer.GetProperty("unmatched").GetInt32());
        Assert.Equal("active", await StatusOf(db, "here@example.net"));

        // Broken input: not JSON, a missing field, too big; an unknown provider, one not set up.
        var (bad, problem) = await PostAsync(http, "/webhooks/ses", "{\"Type\": \"Notification\", ");
        Assert.Equal((HttpStatusCode.BadRequest, "body"), (bad, problem.GetProperty("field").GetString()));
        var (missing, missingProblem) = await PostAsync(http, "/webhooks/ses", """{"Type":"Notification","MessageId":"x"}""");
        Assert.Equal((HttpStatusCode.BadRequest, "TopicArn"), (missing, missingProblem.GetProperty("field").GetString()));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await PostAsync(http, "/webhooks/ses", "\"" + new string('x', 30_000) + "\"")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await PostAsync(http, "/webhooks/sendgrid", "{}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await PostAsync(http, "/webhooks/mailgun", "{}")).Status);

        var metrics = await admin.GetStringAsync("/metrics");
        Assert.Contains("newsletter_reports_refused_total{source=\"webhook\",reason=\"unauthenticated\"} 3", metrics);
        Assert.Contains("newsletter_reports_refused_total{source=\"webhook\",reason=\"replayed\"} 2", metrics);
        Assert.Contains("newsletter_reports_refused_total{source=\"webhook\",reason=\"unmatched\"} 1", metrics);
        Assert.Contains("newsletter_bounces_total{kind=\"complaint\"} 1", metrics);
        confirmations.Stop();
    }

    // ---- Postmark -----------------------------------------------------------------------------------

    [Fact]
    public async Task Postmark_bounces_and_complaints_need_the_basic_auth_and_find_the_delivery_by_its_metadata()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var smtp = new TestSmtpServer();
        var settings = new Dictionary<string, string?>
        {
            ["Newsletter__Webhooks__Postmark__Username"] = "postmark",
            ["Newsletter__Webhooks__Postmark__Password"] = "correct horse battery staple",
        };
        var (service, sent, _) = await SendAsync(db, smtp, settings, "gone@example.net", "annoyed@example.net", "here@example.net");
        await using var running = service;
        // Every digest carries the delivery's key for Postmark to pass back.
        Assert.All(sent.Values, s => Assert.Equal([s.MessageId], s.Metadata));

        string Bounce(Sent s, long id, string type = "HardBounce", string details = "smtp;550 5.1.1 The email account that you tried to reach does not exist.") =>
            new JsonObject
            {
                ["RecordType"] = "Bounce", ["ID"] = id, ["Type"] = type, ["TypeCode"] = 1, ["Name"] = "Hard bounce", ["MessageID"] = Guid.NewGuid().ToString(),
                ["Description"] = "The server was unable to deliver your message (ex: unknown user, mailbox not found).", ["Details"] = details,
                ["Email"] = s.Email, ["BouncedAt"] = "2026-12-04T09:00:00Z", ["Metadata"] = new JsonObject { ["newsletter-delivery"] = s.MessageId },
            }.ToJsonString();

        using var anonymous = new HttpClient { BaseAddress = service.BaseAddress };
        using var wrong = new HttpClient { BaseAddress = service.BaseAddress };
        wrong.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("postmark:guess")));
        using var postmark = new HttpClient { BaseAddress = service.BaseAddress };
        postmark.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("postmark:correct horse battery staple")));

        using (var refused = await anonymous.PostAsync("/webhooks/postmark", Json(Bounce(sent["gone@example.net"], 1))))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Equal("Basic", refused.Headers.WwwAuthenticate.Single().Scheme);
        }
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync(wrong, "/webhooks/postmark", Bounce(sent["gone@example.net"], 1))).Status);
        Assert.Equal("active", await StatusOf(db, "gone@example.net"));

        // A made-up key in the metadata (or another reader's): nothing changes.
        var forged = Bounce(sent["here@example.net"], 2).Replace(sent["here@example.net"].MessageId, $"{1:x16}0000000000000000@example.org");
        Assert.Equal(1, (await PostAsync(postmark, "/webhooks/postmark", forged)).Body.GetProperty("unmatched").GetInt32());
        Assert.Equal("active", await StatusOf(db, "here@example.net"));

        var real = Bounce(sent["gone@example.net"], 3);
        Assert.Equal(1, (await PostAsync(postmark, "/webhooks/postmark", real)).Body.GetProperty("applied").GetInt32());
        Assert.Equal("bounced", await StatusOf(db, "gone@example.net"));
        Assert.Equal(HttpStatusCode.Conflict, (await PostAsync(postmark, "/webhooks/postmark", real)).Status);

        // Postmark calls a spam block a hard bounce; the receiver's words say it is the sender's problem.
        var blocked = Bounce(sent["here@example.net"], 4, details: "smtp;550 5.7.1 Message rejected as spam by Content Filtering");
        Assert.Equal(1, (await PostAsync(postmark, "/webhooks/postmark", blocked)).Body.GetProperty("applied").GetInt32());
        Assert.Equal("active", await StatusOf(db, "here@example.net"));
        Assert.Equal("block", await db.ScalarAsync<string>("select kind from bounce_events b join subscribers s on s.id = b.subscriber_id where s.email = 'here@example.net'"));

        var complaint = new JsonObject
        {
            ["RecordType"] = "SpamComplaint", ["ID"] = 5, ["Type"] = "SpamComplaint", ["TypeCode"] = 512, ["Email"] = "annoyed@example.net",
            ["BouncedAt"] = "2026-12-04T09:05:00Z", ["Metadata"] = new JsonObject { ["newsletter-delivery"] = sent["annoyed@example.net"].MessageId },
        }.ToJsonString();
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(postmark, "/webhooks/postmark", complaint)).Status);
        Assert.Equal("unsubscribed", await StatusOf(db, "annoyed@example.net"));
        // Other record types (deliveries, opens) are taken and ignored.
        var delivery = """{"RecordType":"Delivery","MessageID":"abc","Recipient":"here@example.net","DeliveredAt":"2026-12-04T09:00:00Z"}""";
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(postmark, "/webhooks/postmark", delivery)).Status);
        Assert.Equal(3L, await db.ScalarAsync<long>("select count(*) from bounce_events"));
    }

    // ---- Mailgun ------------------------------------------------------------------------------------

    [Fact]
    public async Task Mailgun_events_need_a_fresh_signature_and_count_once()
    {
        const string Key = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";
        await using var db = await TestDatabase.CreateAsync();
        await using var smtp = new TestSmtpServer();
        var (service, sent, _) = await SendAsync(db, smtp, new Dictionary<string, string?> { ["Newsletter__Webhooks__Mailgun__SigningKey"] = Key },
            "gone@example.net", "annoyed@example.net", "full@example.net");
        await using var running = service;
        var http = service.Http;

        string Event(Sent s, JsonObject data, DateTimeOffset at, string? token = null, string key = Key)
        {
            token ??= Convert.ToHexString(RandomNumberGenerator.GetBytes(25)).ToLowerInvariant();
            var timestamp = at.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
            var signature = Convert.ToHexString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(timestamp + token))).ToLowerInvariant();
            data["recipient"] = s.Email;
            data["id"] = Guid.NewGuid().ToString();
            data["message"] = new JsonObject { ["headers"] = new JsonObject { ["message-id"] = s.MessageId, ["to"] = s.Email } };
            return new JsonObject
            {
                ["signature"] = new JsonObject { ["timestamp"] = timestamp, ["token"] = token, ["signature"] = signature },
                ["event-data"] = data,
            }.ToJsonString();
        }
        JsonObject Failed(string severity, int code, string message) => new()
        {
            ["event"] = "failed", ["severity"] = severity, ["reason"] = "bounce",
            ["delivery-status"] = new JsonObject { ["code"] = code, ["message"] = message, ["description"] = "" },
        };
        var now = DateTimeOffset.UtcNow;

        var gone = Event(sent["gone@example.net"], Failed("permanent", 550, "5.1.1 The email account that you tried to reach does not exist."), now);
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync(http, "/webhooks/mailgun", gone.Replace("\"signature\":\"", "\"signature\":\"0"))).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync(http, "/webhooks/mailgun",
            Event(sent["gone@example.net"], Failed("permanent", 550, "5.1.1 does not exist"), now, key: "key-guessed"))).Status);
        Assert.Equal(HttpStatusCode.Conflict, (await PostAsync(http, "/webhooks/mailgun",
            Event(sent["gone@example.net"], Failed("permanent", 550, "5.1.1 does not exist"), now.AddHours(-2)))).Status);
        Assert.Equal("active", await StatusOf(db, "gone@example.net"));

        Assert.Equal(1, (await PostAsync(http, "/webhooks/mailgun", gone)).Body.GetProperty("applied").GetInt32());
        Assert.Equal("bounced", await StatusOf(db, "gone@example.net"));
        Assert.Equal(HttpStatusCode.Conflict, (await PostAsync(http, "/webhooks/mailgun", gone)).Status);

        Assert.Equal(HttpStatusCode.OK, (await PostAsync(http, "/webhooks/mailgun",
            Event(sent["full@example.net"], Failed("temporary", 452, "4.2.2 The email account that you tried to reach is over quota."), now))).Status);
        Assert.Equal("active", await StatusOf(db, "full@example.net"));
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(http, "/webhooks/mailgun", Event(sent["annoyed@example.net"], new JsonObject { ["event"] = "complained" }, now))).Status);
        Assert.Equal("unsubscribed", await StatusOf(db, "annoyed@example.net"));
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(http, "/webhooks/mailgun", Event(sent["full@example.net"], new JsonObject { ["event"] = "delivered" }, now))).Status);
        Assert.Equal("complaint hard soft", await db.ScalarAsync<string>("select string_agg(kind, ' ' order by kind) from bounce_events"));
    }
}
