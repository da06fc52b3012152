using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Newsletter.Bounces;
using Newsletter.Bounces.Webhooks;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Validation;

namespace Newsletter.Web.Webhooks;

/// <summary>
/// <c>POST /webhooks/{provider}</c>: bounce and complaint events from Amazon SES (through Amazon
/// SNS, signature checked against the configured certificate, subscriptions confirmed), Postmark
/// (HTTP basic auth) and Mailgun (HMAC signature). A call that is not authentic is a 401, a replay
/// (an event id seen before, or a signed timestamp older than <c>Newsletter__Webhooks__MaxAge</c>) a
/// 409; neither changes anything. An authentic call is applied once, in one transaction with its id.
/// </summary>
public static class WebhookEndpoints
{
    public const string Route = "/webhooks/{provider}";

    public static Microsoft.Extensions.Hosting.IHostApplicationBuilder AddNewsletterWebhooks(this Microsoft.Extensions.Hosting.IHostApplicationBuilder builder)
    {
        builder.Services.AddHttpClient(SnsConfirmation, c => c.Timeout = TimeSpan.FromSeconds(15));
        builder.Services.AddSingleton<SesSigners>();
        return builder;
    }

    private const string SnsConfirmation = "sns-confirmation";

    public static void MapNewsletterWebhooks(this WebApplication app) =>
        app.MapPost(Route, ReceiveAsync).ExcludeFromDescription();

    private static async Task<IResult> ReceiveAsync(string provider, HttpContext http, IOptions<WebhookOptions> options, BounceProcessor processor,
        DeliveryMetrics metrics, ILoggerFactory loggers, TimeProvider clock, CancellationToken ct)
    {
        var logger = loggers.CreateLogger(typeof(WebhookEndpoints).FullName!);
        var services = http.RequestServices;
        var now = clock.GetUtcNow();
        var postmark = services.GetRequiredService<IOptions<PostmarkWebhookOptions>>().Value;
        Func<JsonElement, Task<IResult>>? handler = provider switch
        {
            "ses" when services.GetRequiredService<IOptions<SesWebhookOptions>>().Value.Certificate is { Length: > 0 } =>
                body => SesAsync(body, http, options.Value, now, processor, metrics, logger, ct),
            "postmark" when postmark.Username is { Length: > 0 } =>
                body => PostmarkAsync(body, processor, metrics, logger, ct),
            "mailgun" when services.GetRequiredService<IOptions<MailgunWebhookOptions>>().Value.SigningKey is { Length: > 0 } key =>
                body => MailgunAsync(body, key, options.Value, now, processor, metrics, logger, ct),
            _ => null,
        };
        if (handler is null) throw new NotFoundException("provider", $"no webhook '{provider}' is set up here (ses, postmark and mailgun, each once configured)");
        // Postmark's credentials are checked before the body is read at all.
        if (provider == "postmark" && !BasicAuthMatches(http, postmark))
            return Unauthenticated(metrics, logger, provider, "wrong or missing basic auth", http);
        JsonElement body;
        try
        {
            body = await ReadJsonAsync(http, options.Value.MaxBodyBytes, ct);
        }
        catch (InputException)
        {
            metrics.ReportRefused("webhook", "malformed");
            throw;
        }
        try
        {
            return await handler(body);
        }
        catch (InputException e)
        {
            metrics.ReportRefused("webhook", "malformed");
            logger.LogWarning("A {Provider} webhook call was malformed ({Reason}); refused", provider, e.Message);
            throw;
        }
    }

    // ---- Amazon SES through SNS -----------------------------------------------------------------

    private static async Task<IResult> SesAsync(JsonElement body, HttpContext http, WebhookOptions o, DateTimeOffset now, BounceProcessor processor,
        DeliveryMetrics metrics, ILogger logger, CancellationToken ct)
    {
        var services = http.RequestServices;
        var ses = services.GetRequiredService<IOptions<SesWebhookOptions>>().Value;
        var sns = SnsMessage.Read(body);
        if (!sns.IsSignedBy(services.GetRequiredService<SesSigners>().Certificates))
            return Unauthenticated(metrics, logger, "ses", "the SNS signature does not verify with Newsletter__Webhooks__Ses__Certificate", http);
        var topics = ses.TopicArn!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (!topics.Contains(sns.TopicArn, StringComparer.Ordinal))
            return Unauthenticated(metrics, logger, "ses", $"topic {sns.TopicArn} is not in Newsletter__Webhooks__Ses__TopicArn", http);
        if (Stale(sns.SentAt, now, o) is { } stale) return Replayed(metrics, logger, "ses", stale);
        switch (sns.Type)
        {
            case SnsMessage.SubscriptionConfirmation:
                // Signed by SNS for our topic: confirming is what the operator asked for by subscribing us.
                if (!Uri.TryCreate(sns.SubscribeUrl, UriKind.Absolute, out var url) || url.Scheme is not ("https" or "http"))
                    throw new InputException("SubscribeURL", "must be an http(s) URL");
                using (var response = await services.GetRequiredService<IHttpClientFactory>().CreateClient(SnsConfirmation).GetAsync(url, ct))
                    if (!response.IsSuccessStatusCode)
                    {
                        logger.LogError("Confirming the SNS subscription to {Topic} failed: {Status}", sns.TopicArn, (int)response.StatusCode);
                        return TypedResults.Problem(title: "Bad gateway", detail: $"confirming the subscription answered {(int)response.StatusCode}",
                            statusCode: StatusCodes.Status502BadGateway);
                    }
                if (await processor.ProcessEventsAsync("ses", sns.MessageId, [], ct) is null) return Replayed(metrics, logger, "ses", "the same confirmation again");
                logger.LogInformation("Confirmed the SNS subscription to {Topic}", sns.TopicArn);
                return TypedResults.Ok(new WebhookAnswer(0, 0, 0, 0, "subscription confirmed"));
            case SnsMessage.UnsubscribeConfirmation:
                if (await processor.ProcessEventsAsync("ses", sns.MessageId, [], ct) is null) return Replayed(metrics, logger, "ses", "the same message again");
                logger.LogWarning("SNS says the subscription to {Topic} was ended", sns.TopicArn);
                return TypedResults.Ok(new WebhookAnswer(0, 0, 0, 0, "unsubscribe noted"));
        }
        JsonElement notification;
        try
        {
            using var document = JsonDocument.Parse(sns.Message, new JsonDocumentOptions { MaxDepth = 32 });
            notification = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InputException("Message", $"must be an SES notification in JSON ({e.Message})");
        }
        return await ApplyAsync(processor, metrics, logger, "ses", sns.MessageId, ProviderEvents.Ses(notification), ct);
    }

    /// <summary>The SNS signing certificates of <c>Newsletter__Webhooks__Ses__Certificate</c>, read once.</summary>
    internal sealed class SesSigners(IOptions<SesWebhookOptions> options)
    {
        private readonly Lazy<IReadOnlyList<X509Certificate2>> _certificates = new(() => SesCertificates.Load(options.Value.Certificate!));
        public IReadOnlyList<X509Certificate2> Certificates => _certificates.Value;
    }

    // ---- Postmark ---------------------------------------------------------------------------------

    private static async Task<IResult> PostmarkAsync(JsonElement body, BounceProcessor processor, DeliveryMetrics metrics, ILogger logger,
        CancellationToken ct)
    {
        var (eventId, events) = ProviderEvents.Postmark(body);
        return await ApplyAsync(processor, metrics, logger, "postmark", eventId, events, ct);
    }

    private static bool BasicAuthMatches(HttpContext http, PostmarkWebhookOptions o)
    {
        var header = http.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase)) return false;
        byte[] given;
        try { given = Convert.FromBase64String(header["Basic ".Length..].Trim()); }
        catch (FormatException) { return false; }
        var expected = Encoding.UTF8.GetBytes($"{o.Username}:{o.Password}");
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(given), SHA256.HashData(expected));
    }

    // ---- Mailgun ----------------------------------------------------------------------------------

    private static async Task<IResult> MailgunAsync(JsonElement body, string key, WebhookOptions o, DateTimeOffset now, BounceProcessor processor,
        DeliveryMetrics metrics, ILogger logger, CancellationToken ct)
    {
        var (signature, events) = ProviderEvents.Mailgun(body);
        var expected = HMACSHA256.HashData(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(signature.Timestamp + signature.Token));
        byte[] given;
        try { given = Convert.FromHexString(signature.Signature); }
        catch (FormatException) { given = []; }
        if (!CryptographicOperations.FixedTimeEquals(expected, given))
            return Unauthenticated(metrics, logger, "mailgun", "the signature does not match Newsletter__Webhooks__Mailgun__SigningKey", null);
        if (!long.TryParse(signature.Timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds > 32503680000)
            throw new InputException("signature.timestamp", "must be seconds since 1970");
        if (Stale(DateTimeOffset.FromUnixTimeSeconds(seconds), now, o) is { } stale) return Replayed(metrics, logger, "mailgun", stale);
        return await ApplyAsync(processor, metrics, logger, "mailgun", signature.Token, events, ct);
    }

    // ---- shared -----------------------------------------------------------------------------------

    /// <summary>What a call did, per outcome.</summary>
    public sealed record WebhookAnswer(int Applied, int Duplicate, int Ignored, int Unmatched, string? Note = null);

    private static async Task<IResult> ApplyAsync(BounceProcessor processor, DeliveryMetrics metrics, ILogger logger, string provider, string eventId,
        IReadOnlyList<ProviderEvent> events, CancellationToken ct)
    {
        var results = await processor.ProcessEventsAsync(provider, eventId, events, ct);
        if (results is null) return Replayed(metrics, logger, provider, $"event {eventId} was taken before");
        int Count(BounceOutcome outcome) => results.Count(r => r.Outcome == outcome);
        return TypedResults.Ok(new WebhookAnswer(Count(BounceOutcome.Applied), Count(BounceOutcome.Duplicate), Count(BounceOutcome.Ignored), Count(BounceOutcome.Unmatched)));
    }

    private static string? Stale(DateTimeOffset sentAt, DateTimeOffset now, WebhookOptions o) =>
        sentAt < now - o.MaxAge ? $"signed at {sentAt:u}, more than Newsletter__Webhooks__MaxAge ({o.MaxAge}) ago"
            : sentAt > now + o.MaxAge ? $"signed at {sentAt:u}, in the future" : null;

    private static ProblemHttpResult Unauthenticated(DeliveryMetrics metrics, ILogger logger, string provider, string reason, HttpContext? http)
    {
        metrics.ReportRefused("webhook", "unauthenticated");
        logger.LogWarning("A {Provider} webhook call is not authentic ({Reason}); refused", provider, reason);
        if (provider == "postmark") http?.Response.Headers.WWWAuthenticate = "Basic realm=\"webhooks\"";
        return TypedResults.Problem(title: "Unauthorized", detail: reason, statusCode: StatusCodes.Status401Unauthorized);
    }

    private static ProblemHttpResult Replayed(DeliveryMetrics metrics, ILogger logger, string provider, string reason)
    {
        metrics.ReportRefused("webhook", "replayed");
        logger.LogWarning("A {Provider} webhook call is a replay ({Reason}); nothing changed", provider, reason);
        return TypedResults.Problem(title: "Replayed", detail: reason, statusCode: StatusCodes.Status409Conflict);
    }

    /// <summary>The body as one JSON value: at most <paramref name="limit"/> bytes (413 beyond), UTF-8, well formed.</summary>
    private static async Task<JsonElement> ReadJsonAsync(HttpContext http, int limit, CancellationToken ct)
    {
        if (http.Request.ContentLength > limit)
            throw new BadHttpRequestException("The request body is too large.", StatusCodes.Status413PayloadTooLarge);
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > limit) throw new BadHttpRequestException("The request body is too large.", StatusCodes.Status413PayloadTooLarge);
            buffer.Write(chunk, 0, read);
        }
        try
        {
            using var document = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), new JsonDocumentOptions { MaxDepth = 32 });
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InputException("body", $"must be JSON ({e.Message})");
        }
    }
}
