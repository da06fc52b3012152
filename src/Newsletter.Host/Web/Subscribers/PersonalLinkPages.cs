using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Microsoft.AspNetCore.Routing;
using Newsletter.Subscribers;
using Newsletter.Validation;
using static Newsletter.Web.Subscribers.SubscriberPages;

namespace Newsletter.Web.Subscribers;

/// <summary>
/// The pages behind the links in every mail: confirm a sign-up, change preferences (cadence,
/// language, name; resubscribe), unsubscribe. Each route gets its <see cref="PersonalLink"/>
/// checked before it runs. A GET never changes anything (mail scanners follow links); a change is
/// a post with an antiforgery token, except RFC 8058 one-click unsubscribe, which mail providers
/// post with no cookies and no token, and which is never rate limited (one provider address speaks
/// for many readers) and never redirected.
/// </summary>
internal static class PersonalLinkPages
{
    private static readonly string[] Prefixes = ["/confirm", "/preferences", "/unsubscribe"];

    public static bool IsPersonal(PathString path) => Prefixes.Any(p => path.StartsWithSegments(p));

    public static void MapPersonalLinkPages(this RouteGroupBuilder pages)
    {
        var confirm = pages.MapGroup("/confirm/{token}").WithMetadata(new PersonalLinkPurpose(LinkPurpose.Confirm));
        confirm.MapGet("", ConfirmForm);
        confirm.MapPost("", Confirm).RequireRateLimiting(FormsRateLimit);
        var preferences = pages.MapGroup("/preferences/{token}").WithMetadata(new PersonalLinkPurpose(LinkPurpose.Preferences));
        preferences.MapGet("", PreferencesForm);
        preferences.MapPost("", Preferences).RequireRateLimiting(FormsRateLimit);
        var unsubscribe = pages.MapGroup("/unsubscribe/{token}").WithMetadata(new PersonalLinkPurpose(LinkPurpose.Unsubscribe));
        unsubscribe.MapGet("", UnsubscribeForm);
        unsubscribe.MapPost("", Unsubscribe);
    }

    // ---- confirmation --------------------------------------------------------------------

    private static IResult ConfirmForm(HttpContext http, PersonalLink link)
    {
        var s = PageLanguage.Of(http, link.Subscriber);
        return Page(http, "web/Message", Message(http, s, s.ConfirmTitle, [s.ConfirmBody],
            forms: [new ButtonForm($"/confirm/{link.Token}", s.ConfirmButton, true, [])], token: HtmlPage.Token(http)));
    }

    private static async Task<IResult> Confirm(HttpContext http, PersonalLink link, Subscriptions subscriptions, LinkSigner signer, TimeProvider clock,
        CancellationToken ct)
    {
        var s = PageLanguage.Of(http, link.Subscriber);
        await FormPost.ReadAsync(http, MaxFormBytes(http));
        var (result, updated) = await subscriptions.ConfirmAsync(link.Subscriber.PublicId, Client(http), ct);
        if (result == ConfirmResult.NotPending)
            return Page(http, "web/Message", Message(http, s, s.NotPendingTitle, [s.NotPendingBody], links: [(s.SubscribeLink, "/subscribe")]));
        var current = updated ?? link.Subscriber;
        return Page(http, "web/Message", Message(http, s, s.ConfirmedTitle,
            [s.ConfirmedBody, $"{s.Cadence}: {s.CadenceName(current.Cadence)} · {s.Language}: {s.LanguageName(current.Language)}"],
            links: [(s.PreferencesLink, PreferencesUrl(signer, current, clock))]));
    }

    // ---- preferences ---------------------------------------------------------------------

    private static IResult PreferencesForm(HttpContext http, PersonalLink link, LinkSigner signer, TimeProvider clock) =>
        PreferencesPage(http, signer, clock, link.Token, link.Subscriber, null, null);

    private static async Task<IResult> Preferences(HttpContext http, PersonalLink link, Subscriptions subscriptions, LinkSigner signer, TimeProvider clock,
        CancellationToken ct)
    {
        var (token, subscriber) = (link.Token, link.Subscriber);
        var s = PageLanguage.Of(http, subscriber);
        var form = await FormPost.ReadAsync(http, MaxFormBytes(http), "action", "cadence", "language", "name", "time_zone", "hour", "weekday",
            "click_tracking_shown", "click_tracking");
        switch (form.Value("action") ?? "save")
        {
            case "resubscribe":
                var again = await subscriptions.ResubscribeAsync(subscriber.PublicId, ChangeSource.Page, Client(http), ct) ?? subscriber;
                return Page(http, "web/Message", Message(http, s, s.ResubscribedTitle,
                    [$"{s.Cadence}: {s.CadenceName(again.Cadence)} · {s.Language}: {s.LanguageName(again.Language)}"],
                    links: [(s.PreferencesLink, $"/preferences/{token}")]));
            case "save":
                break;
            case var action:
                return BadRequest(http, s, $"action: {s.UnknownActionRule} (got '{TextRules.Shorten(action)}')");
        }
        try
        {
            var cadence = form.Value("cadence") is { } c ? Wire.Parse<Cadence>("cadence", c) : (Cadence?)null;
            var language = form.Value("language") is { } l ? Wire.Parse<Language>("language", l) : (Language?)null;
            var name = form.Value("name") is { } n ? NewSubscriber.NameOrNull(n) ?? "" : null;
            // A form without the delivery-time fields (an older page) leaves the delivery time as it is.
            var time = form.Value("time_zone") is null && form.Value("hour") is null && form.Value("weekday") is null ? null
                : DeliveryTime.Parse(form.Value("time_zone"), form.Value("hour"), form.Value("weekday"));
            // A checkbox sends nothing when unticked: the form says it showed one.
            var tracking = form.Value("click_tracking_shown") is null ? (bool?)null : form.Value("click_tracking") == "on";
            var updated = await subscriptions.UpdatePreferencesAsync(subscriber.PublicId, cadence, language, name, ChangeSource.Preferences, Client(http), ct, time, tracking)
                ?? subscriber;
            return PreferencesPage(http, signer, clock, token, updated, PageLanguage.Of(http, updated).Saved, null);
        }
        catch (InputException e)
        {
            // The form again, unchanged, with the field's rule next to it.
            return PreferencesPage(http, signer, clock, token, subscriber, null, (e.Field, s.Problem(FieldLabel(s, e.Field), e)), StatusCodes.Status400BadRequest);
        }
    }

    private static HtmlResult PreferencesPage(HttpContext http, LinkSigner signer, TimeProvider clock, string token, Subscriber subscriber, string? notice,
        (string, string)? error, int status = StatusCodes.Status200OK)
    {
        var s = PageLanguage.Of(http, subscriber);
        if (subscriber.Status != SubscriberStatus.Active && subscriber.Status != SubscriberStatus.Pending)
            return Page(http, "web/Message", Unsubscribed(http, s, token), status);
        return Page(http, "web/Preferences", new PreferencesPage
        {
            S = s, Title = s.PreferencesTitle, NewsletterName = Name(http), Token = HtmlPage.Token(http), Personal = true,
            Subscriber = subscriber, Action = $"/preferences/{token}",
            Time = DeliveryTimeFields.For(s, http.RequestServices.GetRequiredService<IOptions<ScheduleOptions>>().Value, subscriber.Time, error?.Item1),
            UnsubscribeAction = $"/unsubscribe/{signer.Create(LinkPurpose.Unsubscribe, subscriber.PublicId, clock.GetUtcNow())}",
            Notice = notice, Error = error,
            ClickTracking = http.RequestServices.GetRequiredService<IOptions<TrackingOptions>>().Value.Mode,
        }, status);
    }

    // ---- unsubscribe ---------------------------------------------------------------------

    private static IResult UnsubscribeForm(HttpContext http, PersonalLink link, LinkSigner signer, TimeProvider clock)
    {
        var subscriber = link.Subscriber;
        var s = PageLanguage.Of(http, subscriber);
        var preferences = PreferencesUrl(signer, subscriber, clock);
        if (subscriber.Status is not (SubscriberStatus.Active or SubscriberStatus.Pending))
            return Page(http, "web/Message", Unsubscribed(http, s, preferences["/preferences/".Length..]));
        var forms = new List<ButtonForm> { new($"/unsubscribe/{link.Token}", s.UnsubscribeButton, true, [("from", "page")]) };
        if (subscriber.Cadence == Cadence.Daily)
            forms.Add(new ButtonForm(preferences, s.SwitchToWeekly, false, [("action", "save"), ("cadence", "weekly")], s.SwitchToWeeklyHint));
        return Page(http, "web/Message", Message(http, s, s.UnsubscribeTitle,
            [string.Format(CultureInfo.InvariantCulture, s.UnsubscribeBody, subscriber.Email, s.CadenceName(subscriber.Cadence))],
            forms: forms, token: HtmlPage.Token(http)));
    }

    /// <summary>RFC 8058 one-click, and the page's button: 200 and the "unsubscribed" page, every time.</summary>
    private static async Task<IResult> Unsubscribe(HttpContext http, PersonalLink link, Subscriptions subscriptions, LinkSigner signer, TimeProvider clock,
        CancellationToken ct)
    {
        var s = PageLanguage.Of(http, link.Subscriber);
        // The body is optional (List-Unsubscribe=One-Click, the page's "from", or nothing) and
        // never required: read at most a little of it, in whatever form it comes.
        var source = ChangeSource.OneClick;
        if (await FormPost.ReadOptionalAsync(http, MaxFormBytes(http)) is { } form && form.Value("from") is { } from)
            source = from == "preferences" ? ChangeSource.Preferences : ChangeSource.Page;
        await subscriptions.UnsubscribeAsync(link.Subscriber.PublicId, source, Client(http), ct);
        return Page(http, "web/Message", Unsubscribed(http, s, PreferencesUrl(signer, link.Subscriber, clock)["/preferences/".Length..]));
    }

    private static MessagePage Unsubscribed(HttpContext http, PageStrings s, string preferencesToken) =>
        Message(http, s, s.UnsubscribedTitle, [s.UnsubscribedBody],
            forms: [new ButtonForm($"/preferences/{preferencesToken}", s.ResubscribeButton, false, [("action", "resubscribe")])],
            token: HtmlPage.Token(http));

    private static string PreferencesUrl(LinkSigner signer, Subscriber subscriber, TimeProvider clock) =>
        $"/preferences/{signer.Create(LinkPurpose.Preferences, subscriber.PublicId, clock.GetUtcNow())}";
}
