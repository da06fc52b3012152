using System.Globalization;
using System.Threading.RateLimiting;
using System.Xml;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Validation;

namespace Newsletter.Web;

/// <summary>
/// The pages a reader reaches: sign up with double opt-in, confirm, preferences, unsubscribe
/// (RFC 8058 one-click included), the archive and its Atom feed. Server-rendered from
/// <c>templates/web/</c>; every form but one-click carries an antiforgery token; no page needs
/// JavaScript. Pages reached by a personal link are never cached or indexed, and never leak their
/// token in a Referer header.
/// </summary>
public static class SubscriberPages
{
    public const string FormsRateLimit = "subscriber-forms";
    private const string AntiforgeryField = "__af";

    public static IHostApplicationBuilder AddSubscriberPages(this IHostApplicationBuilder builder)
    {
        builder.Services.AddAntiforgery(o =>
        {
            o.FormFieldName = AntiforgeryField;
            o.Cookie.Name = "nl-af";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = Microsoft.AspNetCore.Http.CookieSecurePolicy.SameAsRequest;
            o.SuppressXFrameOptionsHeader = false;
        });
        Microsoft.AspNetCore.DataProtection.DataProtectionBuilderExtensions.SetApplicationName(builder.Services.AddDataProtection(), "newsletter");
        builder.Services.AddSingleton<Microsoft.Extensions.Options.IConfigureOptions<Microsoft.AspNetCore.DataProtection.KeyManagement.KeyManagementOptions>, DataProtectionKeysInDatabase>();
        builder.Services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.AddPolicy(FormsRateLimit, context =>
            {
                var limit = context.RequestServices.GetRequiredService<IOptions<SubscribeOptions>>().Value.RequestsPerMinute;
                return RateLimitPartition.GetFixedWindowLimiter(context.Connection.RemoteIpAddress?.ToString() ?? "unknown",
                    _ => new FixedWindowRateLimiterOptions { PermitLimit = limit, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 });
            });
            o.OnRejected = async (rejected, ct) =>
            {
                var http = rejected.HttpContext;
                if (rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retry))
                    http.Response.Headers.RetryAfter = ((int)retry.TotalSeconds).ToString(CultureInfo.InvariantCulture);
                var s = Strings(http, null);
                await RenderAsync(http, "web/Message", Message(http, s, s.TooManyTitle, [s.TooManyBody], role: "alert"), StatusCodes.Status429TooManyRequests);
            };
        });
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ConfirmationMailer>());
        builder.Services.AddSingleton<ConfirmationMailer>();
        return builder;
    }

    public static WebApplication MapSubscriberPages(this WebApplication app)
    {
        app.UseRateLimiter();
        app.MapGet("/", () => Results.Redirect("/subscribe")).ExcludeFromDescription();
        app.MapGet("/subscribe", SubscribeForm).ExcludeFromDescription();
        app.MapPost("/subscribe", Subscribe).RequireRateLimiting(FormsRateLimit).DisableAntiforgery().ExcludeFromDescription();
        app.MapGet("/confirm/{token}", ConfirmForm).ExcludeFromDescription();
        app.MapPost("/confirm/{token}", Confirm).RequireRateLimiting(FormsRateLimit).DisableAntiforgery().ExcludeFromDescription();
        app.MapGet("/preferences/{token}", PreferencesForm).ExcludeFromDescription();
        app.MapPost("/preferences/{token}", Preferences).RequireRateLimiting(FormsRateLimit).DisableAntiforgery().ExcludeFromDescription();
        app.MapGet("/unsubscribe/{token}", UnsubscribeForm).ExcludeFromDescription();
        // RFC 8058: mail providers POST here with no cookies and no token; never rate limited
        // (one provider address speaks for many readers), never redirected.
        app.MapPost("/unsubscribe/{token}", Unsubscribe).DisableAntiforgery().ExcludeFromDescription();
        app.MapGet("/issues", Archive).ExcludeFromDescription();
        app.MapGet("/issues/{slug}", IssueView).ExcludeFromDescription();
        app.MapGet("/feed.xml", Feed).ExcludeFromDescription();
        return app;
    }

    // ---- sign-up -------------------------------------------------------------------------

    private static async Task SubscribeForm(HttpContext http, IAntiforgery antiforgery)
    {
        var s = Strings(http, null);
        await RenderAsync(http, "web/Subscribe", new SubscribePage
        {
            S = s, Title = s.SubscribeTitle, NewsletterName = Name(http), Token = HtmlPage.Token(http, antiforgery),
            Language = s.Lang == "en" ? Language.En : Language.Ko,
            OtherLanguageUrl = $"/subscribe?lang={Other(s)}",
        });
    }

    private static async Task Subscribe(HttpContext http, IAntiforgery antiforgery, Subscriptions subscriptions, CancellationToken ct)
    {
        var s = Strings(http, null);
        var form = await ReadFormAsync(http, antiforgery, s, ["email", "name", "cadence", "language", "website"]);
        if (form is null) return;
        var email = form.Value("email");
        var name = form.Value("name");
        var cadence = form.Value("cadence");
        var language = form.Value("language");
        NewSubscriber request;
        try
        {
            request = NewSubscriber.Create(email, name, cadence, language);
        }
        catch (InputException e)
        {
            await RenderAsync(http, "web/Subscribe", new SubscribePage
            {
                S = s, Title = s.SubscribeTitle, NewsletterName = Name(http), Token = HtmlPage.Token(http, antiforgery),
                Email = email ?? "", Name = name ?? "",
                Cadence = Enum.TryParse<Cadence>(cadence, true, out var c) ? c : Cadence.Weekly,
                Language = Enum.TryParse<Language>(language, true, out var l) ? l : Language.Ko,
                Error = (e.Field, s.Problem(FieldLabel(s, e.Field), e)),
            }, StatusCodes.Status400BadRequest);
            return;
        }
        // A filled honeypot is a bot: it gets the same answer and nothing happens.
        if (string.IsNullOrEmpty(form.Value("website")))
            await subscriptions.SignUpAsync(request, Client(http), ct);
        await RenderAsync(http, "web/Message", Message(http, s, s.CheckInboxTitle, [s.CheckInboxBody, s.CheckInboxHint]));
    }

    // ---- confirmation --------------------------------------------------------------------

    private static async Task ConfirmForm(HttpContext http, string token, IAntiforgery antiforgery, LinkSigner signer, Subscriptions subscriptions,
        IOptions<SubscribeOptions> options, TimeProvider clock, CancellationToken ct)
    {
        var subscriber = await VerifyAsync(http, token, LinkPurpose.Confirm, options.Value.ConfirmationLinkLifetime, signer, subscriptions, clock, ct);
        if (subscriber is null) return;
        var s = Strings(http, subscriber);
        await RenderAsync(http, "web/Message", Message(http, s, s.ConfirmTitle, [s.ConfirmBody],
            forms: [new ButtonForm($"/confirm/{token}", s.ConfirmButton, true, [])], token: HtmlPage.Token(http, antiforgery)));
    }

    private static async Task Confirm(HttpContext http, string token, IAntiforgery antiforgery, LinkSigner signer, Subscriptions subscriptions,
        IOptions<SubscribeOptions> options, TimeProvider clock, CancellationToken ct)
    {
        var subscriber = await VerifyAsync(http, token, LinkPurpose.Confirm, options.Value.ConfirmationLinkLifetime, signer, subscriptions, clock, ct);
        if (subscriber is null) return;
        var s = Strings(http, subscriber);
        if (await ReadFormAsync(http, antiforgery, s, []) is null) return;
        var (result, updated) = await subscriptions.ConfirmAsync(subscriber.PublicId, Client(http), ct);
        if (result == ConfirmResult.NotPending)
        {
            await RenderAsync(http, "web/Message", Message(http, s, s.NotPendingTitle, [s.NotPendingBody], links: [(s.SubscribeLink, "/subscribe")]));
            return;
        }
        var current = updated ?? subscriber;
        await RenderAsync(http, "web/Message", Message(http, s, s.ConfirmedTitle,
            [s.ConfirmedBody, $"{s.Cadence}: {s.CadenceName(current.Cadence)} · {s.Language}: {s.LanguageName(current.Language)}"],
            links: [(s.PreferencesLink, PreferencesUrl(signer, current, clock))]));
    }

    // ---- preferences ---------------------------------------------------------------------

    private static async Task PreferencesForm(HttpContext http, string token, IAntiforgery antiforgery, LinkSigner signer, Subscriptions subscriptions,
        TimeProvider clock, CancellationToken ct)
    {
        var subscriber = await VerifyAsync(http, token, LinkPurpose.Preferences, null, signer, subscriptions, clock, ct);
        if (subscriber is null) return;
        await RenderPreferencesAsync(http, antiforgery, signer, clock, token, subscriber, null, null);
    }

    private static async Task Preferences(HttpContext http, string token, IAntiforgery antiforgery, LinkSigner signer, Subscriptions subscriptions,
        TimeProvider clock, CancellationToken ct)
    {
        var subscriber = await VerifyAsync(http, token, LinkPurpose.Preferences, null, signer, subscriptions, clock, ct);
        if (subscriber is null) return;
        var s = Strings(http, subscriber);
        var form = await ReadFormAsync(http, antiforgery, s, ["action", "cadence", "language", "name"]);
        if (form is null) return;
        var action = form.Value("action") ?? "save";
        if (action == "resubscribe")
        {
            var again = await subscriptions.ResubscribeAsync(subscriber.PublicId, ChangeSource.Page, Client(http), ct) ?? subscriber;
            await RenderAsync(http, "web/Message", Message(http, s, s.ResubscribedTitle,
                [$"{s.Cadence}: {s.CadenceName(again.Cadence)} · {s.Language}: {s.LanguageName(again.Language)}"],
                links: [(s.PreferencesLink, $"/preferences/{token}")]));
            return;
        }
        if (action != "save")
        {
            await BadRequestAsync(http, s, $"action: {s.UnknownActionRule} (got '{TextRules.Shorten(action)}')");
            return;
        }
        try
        {
            var cadence = form.Value("cadence") is { } c ? Wire.Parse<Cadence>("cadence", c) : (Cadence?)null;
            var language = form.Value("language") is { } l ? Wire.Parse<Language>("language", l) : (Language?)null;
            var name = form.Value("name") is { } n ? NewSubscriber.NameOrNull(n) ?? "" : null;
            var updated = await subscriptions.UpdatePreferencesAsync(subscriber.PublicId, cadence, language, name, ChangeSource.Preferences, Client(http), ct)
                ?? subscriber;
            await RenderPreferencesAsync(http, antiforgery, signer, clock, token, updated, Strings(http, updated).Saved, null);
        }
        catch (InputException e)
        {
            await RenderPreferencesAsync(http, antiforgery, signer, clock, token, subscriber, null, (e.Field, s.Problem(FieldLabel(s, e.Field), e)),
                StatusCodes.Status400BadRequest);
        }
    }

    private static Task RenderPreferencesAsync(HttpContext http, IAntiforgery antiforgery, LinkSigner signer, TimeProvider clock, string token,
        Subscriber subscriber, string? notice, (string, string)? error, int status = StatusCodes.Status200OK)
    {
        var s = Strings(http, subscriber);
        if (subscriber.Status != SubscriberStatus.Active && subscriber.Status != SubscriberStatus.Pending)
            return RenderAsync(http, "web/Message", Unsubscribed(http, s, token, antiforgery), status);
        return RenderAsync(http, "web/Preferences", new PreferencesPage
        {
            S = s, Title = s.PreferencesTitle, NewsletterName = Name(http), Token = HtmlPage.Token(http, antiforgery), Personal = true,
            Subscriber = subscriber, Action = $"/preferences/{token}",
            UnsubscribeAction = $"/unsubscribe/{signer.Create(LinkPurpose.Unsubscribe, subscriber.PublicId, clock.GetUtcNow())}",
            Notice = notice, Error = error,
        }, status);
    }

    // ---- unsubscribe ---------------------------------------------------------------------

    private static async Task UnsubscribeForm(HttpContext http, string token, IAntiforgery antiforgery, LinkSigner signer, Subscriptions subscriptions,
        TimeProvider clock, CancellationToken ct)
    {
        var subscriber = await VerifyAsync(http, token, LinkPurpose.Unsubscribe, null, signer, subscriptions, clock, ct);
        if (subscriber is null) return;
        var s = Strings(http, subscriber);
        var preferences = PreferencesUrl(signer, subscriber, clock);
        if (subscriber.Status is not (SubscriberStatus.Active or SubscriberStatus.Pending))
        {
            await RenderAsync(http, "web/Message", Unsubscribed(http, s, preferences["/preferences/".Length..], antiforgery));
            return;
        }
        var forms = new List<ButtonForm> { new($"/unsubscribe/{token}", s.UnsubscribeButton, true, [("from", "page")]) };
        if (subscriber.Cadence == Cadence.Daily)
            forms.Add(new ButtonForm(preferences, s.SwitchToWeekly, false, [("action", "save"), ("cadence", "weekly")], s.SwitchToWeeklyHint));
        await RenderAsync(http, "web/Message", Message(http, s, s.UnsubscribeTitle,
            [string.Format(CultureInfo.InvariantCulture, s.UnsubscribeBody, subscriber.Email, s.CadenceName(subscriber.Cadence))],
            forms: forms, token: HtmlPage.Token(http, antiforgery)));
    }

    /// <summary>RFC 8058 one-click, and the page's button: 200 and the "unsubscribed" page, every time.</summary>
    private static async Task Unsubscribe(HttpContext http, string token, IAntiforgery antiforgery, LinkSigner signer, Subscriptions subscriptions,
        TimeProvider clock, CancellationToken ct)
    {
        var subscriber = await VerifyAsync(http, token, LinkPurpose.Unsubscribe, null, signer, subscriptions, clock, ct);
        if (subscriber is null) return;
        var s = Strings(http, subscriber);
        // The body is optional (List-Unsubscribe=One-Click, the page's "from", or nothing) and
        // never required: read at most a little of it, in whatever form it comes.
        var source = ChangeSource.OneClick;
        if (http.Request.HasFormContentType)
        {
            try
            {
                LimitBody(http);
                var form = await http.Request.ReadFormAsync(ct);
                if (form["from"] is [var from]) source = from == "preferences" ? ChangeSource.Preferences : ChangeSource.Page;
            }
            catch (Exception e) when (e is InvalidDataException or IOException or BadHttpRequestException) { }
        }
        await subscriptions.UnsubscribeAsync(subscriber.PublicId, source, Client(http), ct);
        var preferences = PreferencesUrl(signer, subscriber, clock);
        await RenderAsync(http, "web/Message", Unsubscribed(http, s, preferences["/preferences/".Length..], antiforgery));
    }

    private static MessagePage Unsubscribed(HttpContext http, PageStrings s, string preferencesToken, IAntiforgery antiforgery) =>
        Message(http, s, s.UnsubscribedTitle, [s.UnsubscribedBody],
            forms: [new ButtonForm($"/preferences/{preferencesToken}", s.ResubscribeButton, false, [("action", "resubscribe")])],
            token: HtmlPage.Token(http, antiforgery));

    // ---- archive -------------------------------------------------------------------------

    private static async Task Archive(HttpContext http, IssueStore issues, CancellationToken ct)
    {
        var s = Strings(http, null);
        var language = s.Lang == "en" ? Language.En : Language.Ko;
        var list = new List<(string, string, string?)>();
        foreach (var issue in await issues.ListPublishedAsync(200, ct))
            list.Add((issue.Slug, issue.Title.For(language), issue.PublishedAt?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)));
        await RenderAsync(http, "web/Issues", new ArchivePage
        {
            S = s, Title = s.ArchiveTitle, NewsletterName = Name(http), Issues = list, Lang = s.Lang, OtherLanguageUrl = $"/issues?lang={Other(s)}",
        });
    }

    private static async Task IssueView(HttpContext http, string slug, IssueStore issues, CancellationToken ct)
    {
        var s = Strings(http, null);
        var issue = await issues.GetAsync(slug, ct);
        if (issue is not { Status: IssueStatus.Published })
        {
            await NotFoundAsync(http, s, s.NotFoundBody);
            return;
        }
        var language = http.Request.Query["lang"] == "both" ? Language.Both : s.Lang == "en" ? Language.En : Language.Ko;
        await RenderAsync(http, "web/Issue", new IssuePage
        {
            S = s, Title = issue.Title.For(language), NewsletterName = Name(http), Issue = issue, Language = language,
            Period = DigestRenderer.FormatPeriod(issue), OtherLanguageUrl = $"/issues/{Uri.EscapeDataString(slug)}?lang={Other(s)}",
        });
    }

    private static async Task Feed(HttpContext http, IssueStore issues, IOptions<NewsletterOptions> options, CancellationToken ct)
    {
        var baseUrl = options.Value.PublicUrl.TrimEnd('/');
        var published = await issues.ListPublishedAsync(50, ct);
        // Written whole before the first byte goes out: a feed is either complete or an error,
        // never a 200 cut off mid-element. Every text goes through XmlSafe, so text stored before
        // the current rules cannot break it either.
        using var buffer = new MemoryStream();
        await using (var writer = XmlWriter.Create(buffer, new XmlWriterSettings { Async = true, Encoding = new System.Text.UTF8Encoding(false), Indent = true }))
        {
            const string atom = "http://www.w3.org/2005/Atom";
            await writer.WriteStartDocumentAsync();
            await writer.WriteStartElementAsync(null, "feed", atom);
            await writer.WriteElementStringAsync(null, "title", atom, TextRules.XmlSafe(DigestRenderer.NewsletterName(options.Value)));
            await writer.WriteElementStringAsync(null, "id", atom, $"{baseUrl}/feed.xml");
            await WriteLinkAsync(writer, atom, "self", $"{baseUrl}/feed.xml");
            await WriteLinkAsync(writer, atom, "alternate", $"{baseUrl}/issues");
            var updated = published.Count > 0 ? published.Max(i => i.PublishedAt ?? i.CreatedAt) : DateTime.UnixEpoch;
            await writer.WriteElementStringAsync(null, "updated", atom, XmlConvert.ToString(DateTime.SpecifyKind(updated, DateTimeKind.Utc), XmlDateTimeSerializationMode.Utc));
            foreach (var issue in published)
            {
                var url = $"{baseUrl}/issues/{Uri.EscapeDataString(issue.Slug)}";
                await writer.WriteStartElementAsync(null, "entry", atom);
                await writer.WriteElementStringAsync(null, "title", atom, TextRules.XmlSafe(issue.Title.For(Language.Both)));
                await writer.WriteElementStringAsync(null, "id", atom, url);
                await WriteLinkAsync(writer, atom, "alternate", url);
                var at = XmlConvert.ToString(DateTime.SpecifyKind(issue.PublishedAt ?? issue.CreatedAt, DateTimeKind.Utc), XmlDateTimeSerializationMode.Utc);
                await writer.WriteElementStringAsync(null, "published", atom, at);
                await writer.WriteElementStringAsync(null, "updated", atom, at);
                await writer.WriteStartElementAsync(null, "author", atom);
                await writer.WriteElementStringAsync(null, "name", atom, TextRules.XmlSafe(DigestRenderer.NewsletterName(options.Value)));
                await writer.WriteEndElementAsync();
                var summary = string.Join("\n\n", new[] { issue.Intro?.Ko, issue.Intro?.En }.Where(t => t is not null)
                    .Concat(issue.Items.Select((item, i) => $"{i + 1}. {item.Title.For(Language.Both)}")));
                await writer.WriteElementStringAsync(null, "summary", atom, TextRules.XmlSafe(summary));
                await writer.WriteEndElementAsync();
            }
            await writer.WriteEndElementAsync();
            await writer.WriteEndDocumentAsync();
        }
        http.Response.ContentType = "application/atom+xml; charset=utf-8";
        http.Response.ContentLength = buffer.Length;
        await http.Response.Body.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), ct);
    }

    private static async Task WriteLinkAsync(XmlWriter writer, string ns, string rel, string href)
    {
        await writer.WriteStartElementAsync(null, "link", ns);
        await writer.WriteAttributeStringAsync(null, "rel", null, rel);
        await writer.WriteAttributeStringAsync(null, "href", null, href);
        await writer.WriteEndElementAsync();
    }

    // ---- helpers -------------------------------------------------------------------------

    /// <summary>The subscriber of a valid token; otherwise answers with the "link not valid" page (404) and returns null.</summary>
    private static async Task<Subscriber?> VerifyAsync(HttpContext http, string token, LinkPurpose purpose, TimeSpan? maxAge, LinkSigner signer,
        Subscriptions subscriptions, TimeProvider clock, CancellationToken ct)
    {
        if (signer.TryVerify(token, purpose, clock.GetUtcNow(), maxAge, out var publicId) && await subscriptions.FindAsync(publicId, ct) is { } subscriber)
            return subscriber;
        var s = Strings(http, null);
        await NotFoundAsync(http, s, s.LinkNotValidBody);
        return null;
    }

    private sealed class Form(IFormCollection values)
    {
        /// <summary>The field's single value, or null when absent.</summary>
        public string? Value(string name) => values.TryGetValue(name, out var v) && v.Count > 0 ? v[^1] : null;
    }

    /// <summary>
    /// Reads a form post: size-limited, antiforgery-checked, every field known. On failure it has
    /// answered with a 4xx page naming what is wrong, and returns null.
    /// </summary>
    private static async Task<Form?> ReadFormAsync(HttpContext http, IAntiforgery antiforgery, PageStrings s, string[] fields)
    {
        LimitBody(http);
        IFormCollection values;
        try
        {
            if (!http.Request.HasFormContentType)
            {
                await BadRequestAsync(http, s, s.NotAFormBody);
                return null;
            }
            values = await ReadValuesAsync(http);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await RenderAsync(http, "web/Message", Message(http, s, s.BadRequestTitle, [s.TooLargeBody], role: "alert"), StatusCodes.Status413PayloadTooLarge);
            return null;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or BadHttpRequestException)
        {
            http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(SubscriberPages)).LogInformation("A form post to {Path} could not be read: {Reason}", http.Request.Path, e.Message);
            await BadRequestAsync(http, s, s.FormUnreadableBody);
            return null;
        }
        try
        {
            await antiforgery.ValidateRequestAsync(http);
        }
        catch (AntiforgeryValidationException)
        {
            await RenderAsync(http, "web/Message", Message(http, s, s.BadRequestTitle, [s.FormExpiredBody], role: "alert"), StatusCodes.Status400BadRequest);
            return null;
        }
        foreach (var key in values.Keys)
        {
            if (key == AntiforgeryField || fields.Contains(key)) continue;
            await BadRequestAsync(http, s, $"{TextRules.Shorten(key)}: {s.UnknownFieldRule}");
            return null;
        }
        return new Form(values);
    }

    /// <summary>
    /// The form's values. The framework refuses a url-encoded value holding a control character
    /// without saying which field it was in; such a form (already within the size limit) is read
    /// pair by pair instead, so the field's own rule refuses it by name like any other bad value.
    /// </summary>
    private static async Task<IFormCollection> ReadValuesAsync(HttpContext http)
    {
        var max = http.RequestServices.GetRequiredService<IOptions<SubscribeOptions>>().Value.MaxFormBytes;
        http.Request.EnableBuffering(bufferThreshold: max, bufferLimit: max);
        try
        {
            return await http.Request.ReadFormAsync(http.RequestAborted);
        }
        catch (InvalidDataException) when (http.Request.ContentType?.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase) == true)
        {
            http.Request.Body.Position = 0;
            using var reader = new StreamReader(http.Request.Body, new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true), false, 4096, leaveOpen: true);
            string body;
            try { body = await reader.ReadToEndAsync(http.RequestAborted); }
            catch (System.Text.DecoderFallbackException) { throw new InvalidDataException("the form is not UTF-8"); }
            var pairs = new Dictionary<string, Microsoft.Extensions.Primitives.StringValues>(StringComparer.OrdinalIgnoreCase);
            foreach (var pair in body.Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=');
                var key = Decode(eq < 0 ? pair : pair[..eq]);
                var value = eq < 0 ? "" : Decode(pair[(eq + 1)..]);
                if (key.Length > 64 || pairs.Count >= 32) throw new InvalidDataException("the form has too many or too long fields");
                pairs[key] = Microsoft.Extensions.Primitives.StringValues.Concat(pairs.GetValueOrDefault(key), value);
            }
            var form = new FormCollection(pairs);
            http.Features.Set<IFormFeature>(new FormFeature(form));
            return form;
        }

        static string Decode(string text) => Uri.UnescapeDataString(text.Replace('+', ' '));
    }

    private static void LimitBody(HttpContext http)
    {
        var max = http.RequestServices.GetRequiredService<IOptions<SubscribeOptions>>().Value.MaxFormBytes;
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature) feature.MaxRequestBodySize = max;
        if (http.Features.Get<IFormFeature>() is null)
            http.Features.Set<IFormFeature>(new FormFeature(http.Request, new FormOptions
            {
                ValueCountLimit = 32, KeyLengthLimit = 64, ValueLengthLimit = max, MultipartBodyLengthLimit = max, MultipartHeadersLengthLimit = 4096,
            }));
    }

    private static Task BadRequestAsync(HttpContext http, PageStrings s, string detail) =>
        RenderAsync(http, "web/Message", Message(http, s, s.BadRequestTitle, [detail], role: "alert"), StatusCodes.Status400BadRequest);

    private static Task NotFoundAsync(HttpContext http, PageStrings s, string body) =>
        RenderAsync(http, "web/Message", Message(http, s, s.NotFoundTitle, [body], links: [(s.SubscribeLink, "/subscribe"), (s.ArchiveLink, "/issues")], role: "alert"),
            StatusCodes.Status404NotFound);

    private static MessagePage Message(HttpContext http, PageStrings s, string title, IReadOnlyList<string> paragraphs,
        IReadOnlyList<ButtonForm>? forms = null, IReadOnlyList<(string, string)>? links = null, FormToken? token = null, string role = "status") => new()
    {
        S = s, Title = title, NewsletterName = Name(http), Paragraphs = paragraphs, Forms = forms ?? [], Links = links ?? [], Token = token, Role = role,
        Personal = http.Request.Path.StartsWithSegments("/confirm") || http.Request.Path.StartsWithSegments("/preferences") || http.Request.Path.StartsWithSegments("/unsubscribe"),
    };

    internal static Task RenderAsync<T>(HttpContext http, string template, T model, int status = StatusCodes.Status200OK) where T : PageView
    {
        http.Response.Headers.ContentLanguage = model.S.Lang;
        http.Response.Headers.Vary = "Accept-Language";
        return HtmlPage.WriteAsync(http, template, model, status,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            "no-referrer", noStore: model.Personal || model.Token is not null);
    }

    /// <summary>The page language: <c>?lang=</c>, then the subscriber's, then Accept-Language, then Korean.</summary>
    internal static PageStrings Strings(HttpContext http, Subscriber? subscriber)
    {
        var query = http.Request.Query["lang"].ToString();
        if (query is "ko" or "en") return PageStrings.For(query);
        if (subscriber is not null) return PageStrings.For(subscriber.Language == Language.En ? "en" : "ko");
        foreach (var value in http.Request.GetTypedHeaders().AcceptLanguage.OrderByDescending(v => v.Quality ?? 1))
        {
            var tag = value.Value.ToString();
            if (tag.StartsWith("ko", StringComparison.OrdinalIgnoreCase)) return PageStrings.Ko;
            if (tag.StartsWith("en", StringComparison.OrdinalIgnoreCase)) return PageStrings.En;
        }
        return PageStrings.Ko;
    }

    private static string Other(PageStrings s) => s.Lang == "ko" ? "en" : "ko";

    private static string Name(HttpContext http) =>
        DigestRenderer.NewsletterName(http.RequestServices.GetRequiredService<IOptions<NewsletterOptions>>().Value);

    private static string PreferencesUrl(LinkSigner signer, Subscriber subscriber, TimeProvider clock) =>
        $"/preferences/{signer.Create(LinkPurpose.Preferences, subscriber.PublicId, clock.GetUtcNow())}";

    private static ClientInfo Client(HttpContext http) =>
        new(http.Connection.RemoteIpAddress?.ToString(), http.Request.Headers.UserAgent.ToString() is { Length: > 0 } ua ? ua : null);

    private static string FieldLabel(PageStrings s, string field) => field switch
    {
        "email" => s.Email,
        "name" => s.Name,
        "cadence" => s.Cadence,
        "language" => s.Language,
        _ => field,
    };
}
