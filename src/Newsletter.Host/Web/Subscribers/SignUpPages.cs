using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Subscribers;
using Newsletter.Validation;
using static Newsletter.Web.Subscribers.SubscriberPages;

namespace Newsletter.Web.Subscribers;

/// <summary>
/// Sign-up with double opt-in: the form, and its post, which stores a pending subscriber and mails
/// the confirmation link (a filled honeypot field gets the same answer and changes nothing).
/// </summary>
internal static class SignUpPages
{
    public static void MapSignUpPages(this RouteGroupBuilder pages)
    {
        pages.MapGet("/", () => Results.Redirect("/subscribe"));
        pages.MapGet("/subscribe", Form);
        pages.MapPost("/subscribe", SignUp).RequireRateLimiting(FormsRateLimit);
    }

    private static IResult Form(HttpContext http) => FormPage(http, PageLanguage.Of(http, null), null, null, null, null, null, null);

    private static async Task<IResult> SignUp(HttpContext http, Subscriptions subscriptions, CancellationToken ct)
    {
        var s = PageLanguage.Of(http, null);
        var form = await FormPost.ReadAsync(http, MaxFormBytes(http), "email", "name", "cadence", "language", "time_zone", "hour", "weekday", "website");
        var (email, name, cadence, language) = (form.Value("email"), form.Value("name"), form.Value("cadence"), form.Value("language"));
        var (zone, hour, weekday) = (form.Value("time_zone"), form.Value("hour"), form.Value("weekday"));
        NewSubscriber request;
        try
        {
            request = NewSubscriber.Create(email, name, cadence, language, DeliveryTime.Parse(zone, hour, weekday));
        }
        catch (InputException e)
        {
            // The form again, as filled in, with the field's rule next to it.
            return FormPage(http, s, email, name, cadence, language, DeliveryTimeFields.Lenient(zone, hour, weekday), (e.Field, s.Problem(FieldLabel(s, e.Field), e)));
        }
        if (string.IsNullOrEmpty(form.Value("website")))
            await subscriptions.SignUpAsync(request, Client(http), ct);
        return Page(http, "web/Message", Message(http, s, s.CheckInboxTitle, [s.CheckInboxBody, s.CheckInboxHint]));
    }

    private static HtmlResult FormPage(HttpContext http, PageStrings s, string? email, string? name, string? cadence, string? language, DeliveryTime? time,
        (string Field, string Message)? error) =>
        Page(http, "web/Subscribe", new SubscribePage
        {
            Time = DeliveryTimeFields.For(s, http.RequestServices.GetRequiredService<IOptions<ScheduleOptions>>().Value, time, error?.Field),
            S = s, Title = s.SubscribeTitle, NewsletterName = Name(http), Token = HtmlPage.Token(http),
            Email = email ?? "", Name = name ?? "",
            Cadence = Enum.TryParse<Cadence>(cadence, true, out var c) ? c : Cadence.Weekly,
            Language = error is null ? PageLanguage.Reading(s) : Enum.TryParse<Language>(language, true, out var l) ? l : Language.Ko,
            OtherLanguageUrl = error is null ? $"/subscribe?lang={PageLanguage.Other(s)}" : null,
            Error = error,
        }, error is null ? StatusCodes.Status200OK : StatusCodes.Status400BadRequest);
}
