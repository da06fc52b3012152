using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Digests;
using Newsletter.Subscribers;
using Newsletter.Validation;

namespace Newsletter.Web.Subscribers;

/// <summary>
/// The pages a reader reaches, server-rendered from <c>templates/web/</c> in the reader's language
/// (<see cref="PageLanguage"/>): sign-up with double opt-in (<see cref="SignUpPages"/>), the
/// personal links of every mail (<see cref="PersonalLinkPages"/>: confirm, preferences,
/// unsubscribe with RFC 8058 one-click) and the public archive with its Atom feed
/// (<see cref="ArchivePages"/>). Every form but one-click carries an antiforgery token; no page
/// needs JavaScript. Pages reached by a personal link are never cached or indexed, and never leak
/// their token in a Referer header. What a page refuses is shown by <see cref="ErrorPages"/>.
/// </summary>
public static class SubscriberPages
{
    public const string FormsRateLimit = "subscriber-forms";

    private static readonly PagePolicy Policy = new(
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        "no-referrer");

    /// <summary>
    /// The one script of the reader's pages (progressive enhancement: the forms work without it):
    /// where the time-zone list shows only the configured default, choose the browser's own zone.
    /// </summary>
    public const string TimeZoneScript = """
        (function () {
          var select = document.getElementById("time_zone");
          if (!select || select.dataset.prefill !== "browser" || !window.Intl) return;
          var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
          for (var i = 0; i < select.options.length; i++)
            if (select.options[i].value === zone) { select.selectedIndex = i; return; }
        })();
        """;

    public static IHostApplicationBuilder AddSubscriberPages(this IHostApplicationBuilder builder)
    {
        builder.Services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.AddPolicy(FormsRateLimit, context =>
            {
                var limit = context.RequestServices.GetRequiredService<IOptions<SubscribeOptions>>().Value.RequestsPerMinute;
                return RateLimitPartition.GetFixedWindowLimiter(context.Connection.RemoteIpAddress?.ToString() ?? "unknown",
                    _ => new FixedWindowRateLimiterOptions { PermitLimit = limit, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 });
            });
            // Per address, so one flooding address is refused while every other reader's click goes through.
            o.AddPolicy(ClickRedirects.RateLimit, context =>
            {
                var limit = context.RequestServices.GetRequiredService<IOptions<TrackingOptions>>().Value.RequestsPerMinute;
                return RateLimitPartition.GetFixedWindowLimiter(context.Connection.RemoteIpAddress?.ToString() ?? "unknown",
                    _ => new FixedWindowRateLimiterOptions { PermitLimit = limit, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 });
            });
            o.OnRejected = async (rejected, ct) =>
            {
                var http = rejected.HttpContext;
                if (rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retry))
                    http.Response.Headers.RetryAfter = ((int)retry.TotalSeconds).ToString(CultureInfo.InvariantCulture);
                var s = PageLanguage.Of(http, null);
                await Page(http, "web/Message", Message(http, s, s.TooManyTitle, [s.TooManyBody], role: "alert"), StatusCodes.Status429TooManyRequests)
                    .ExecuteAsync(http);
            };
        });
        builder.Services.AddHostedService<ClickRecording>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ConfirmationMailer>());
        builder.Services.AddSingleton<ConfirmationMailer>();
        return builder;
    }

    public static WebApplication MapSubscriberPages(this WebApplication app)
    {
        app.UseRateLimiter();
        var pages = app.MapGroup("").WithMetadata(new ErrorPages()).ExcludeFromDescription();
        pages.MapSignUpPages();
        pages.MapPersonalLinkPages();
        pages.MapArchivePages();
        pages.MapClickRedirects();
        pages.MapGet("/assets/time-zone.js", (HttpContext http) =>
        {
            http.Response.Headers.CacheControl = "public, max-age=86400";
            return Results.Text(TimeZoneScript, "text/javascript; charset=utf-8");
        });
        return app;
    }

    // ---- what the flows share ------------------------------------------------------------

    /// <summary>The largest form a reader's page accepts (<c>Newsletter__Subscribe__MaxFormBytes</c>).</summary>
    internal static long MaxFormBytes(HttpContext http) => http.RequestServices.GetRequiredService<IOptions<SubscribeOptions>>().Value.MaxFormBytes;

    /// <summary>A page in the reader's language; never cached when it is personal or carries a form.</summary>
    internal static HtmlResult Page<T>(HttpContext http, string template, T model, int status = StatusCodes.Status200OK) where T : PageView =>
        new(h =>
        {
            h.Response.Headers.ContentLanguage = model.S.Lang;
            h.Response.Headers.Vary = "Accept-Language";
            return HtmlPage.WriteAsync(h, template, model, status, Policy, noStore: model.Personal || model.Token is not null);
        }, status);

    internal static MessagePage Message(HttpContext http, PageStrings s, string title, IReadOnlyList<string> paragraphs,
        IReadOnlyList<ButtonForm>? forms = null, IReadOnlyList<(string, string)>? links = null, FormToken? token = null, string role = "status") => new()
    {
        S = s, Title = title, NewsletterName = Name(http), Paragraphs = paragraphs, Forms = forms ?? [], Links = links ?? [], Token = token, Role = role,
        Personal = PersonalLinkPages.IsPersonal(http.Request.Path),
    };

    internal static HtmlResult BadRequest(HttpContext http, PageStrings s, string detail) =>
        Page(http, "web/Message", Message(http, s, s.BadRequestTitle, [detail], role: "alert"), StatusCodes.Status400BadRequest);

    internal static string Name(HttpContext http) =>
        DigestRenderer.NewsletterName(http.RequestServices.GetRequiredService<IOptions<NewsletterOptions>>().Value);

    internal static ClientInfo Client(HttpContext http) =>
        new(http.Connection.RemoteIpAddress?.ToString(), http.Request.Headers.UserAgent.ToString() is { Length: > 0 } ua ? ua : null);

    internal static string FieldLabel(PageStrings s, string field) => field switch
    {
        "email" => s.Email,
        "name" => s.Name,
        "cadence" => s.Cadence,
        "language" => s.Language,
        "time_zone" => s.TimeZone,
        "hour" => s.Hour,
        "weekday" => s.Weekday,
        _ => field,
    };

    /// <summary>
    /// A refused request, said in the reader's language: a personal link that is not valid (404),
    /// a page that does not exist (404), an expired, oversized, unreadable or foreign form (400,
    /// 413), a field that breaks its rule (400, naming the field), or our own failure (500).
    /// </summary>
    private sealed class ErrorPages : IErrorPresenter
    {
        public Task PresentAsync(HttpContext http, WebError error)
        {
            var s = PageLanguage.Of(http, null);
            if (error.Status == StatusCodes.Status404NotFound)
                return Page(http, "web/Message", Message(http, s, s.NotFoundTitle, [error.Field == PersonalLink.Field ? s.LinkNotValidBody : s.NotFoundBody],
                    links: [(s.SubscribeLink, "/subscribe"), (s.ArchiveLink, "/issues")], role: "alert"), error.Status).ExecuteAsync(http);
            var (title, body) = error.Exception switch
            {
                Microsoft.AspNetCore.Antiforgery.AntiforgeryValidationException => (s.BadRequestTitle, s.FormExpiredBody),
                BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => (s.BadRequestTitle, s.TooLargeBody),
                UnreadableFormException { NotAForm: true } => (s.BadRequestTitle, s.NotAFormBody),
                UnreadableFormException or BadHttpRequestException => (s.BadRequestTitle, s.FormUnreadableBody),
                InputException i => (s.BadRequestTitle, s.Problem(FieldLabel(s, i.Field), i)),
                _ => (s.ErrorTitle, s.ErrorBody),
            };
            return Page(http, "web/Message", Message(http, s, title, [body], role: "alert"), error.Status).ExecuteAsync(http);
        }
    }
}
