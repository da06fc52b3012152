using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
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

    private static IResult Form(HttpContext http) => FormPage(http, PageLanguage.Of(http, null), null, null, null, null, null);

    private static async Task<IResult> SignUp(HttpContext http, Subscriptions subscriptions, CancellationToken ct)
    {
        var s = PageLanguage.Of(http, null);
        var form = await FormPost.ReadAsync(http, MaxFormBytes(http), "email", "name", "cadence", "language", "website");
        var (email, name, cadence, language) = (form.Value("email"), form.Value("name"), form.Value("cadence"), form.Value("language"));
        NewSubscriber request;
        try
        {
            request = NewSubscriber.Create(email, name, cadence, language);
        }
        catch (InputException e)
        {
            // The form again, as filled in, with the field's rule next to it.
            return FormPage(http, s, email, name, cadence, language, (e.Field, s.Problem(FieldLabel(s, e.Field), e)));
        }
        if (string.IsNullOrEmpty(form.Value("website")))
            await subscriptions.SignUpAsync(request, Client(http), ct);
        return Page(http, "web/Message", Message(http, s, s.CheckInboxTitle, [s.CheckInboxBody, s.CheckInboxHint]));
    }

    private static HtmlResult FormPage(HttpContext http, PageStrings s, string? email, string? name, string? cadence, string? language, (string, string)? error) =>
        Page(http, "web/Subscribe", new SubscribePage
        {
            S = s, Title = s.SubscribeTitle, NewsletterName = Name(http), Token = HtmlPage.Token(http),
            Email = email ?? "", Name = name ?? "",
            Cadence = Enum.TryParse<Cadence>(cadence, true, out var c) ? c : Cadence.Weekly,
            Language = error is null ? PageLanguage.Reading(s) : Enum.TryParse<Language>(language, true, out var l) ? l : Language.Ko,
            OtherLanguageUrl = error is null ? $"/subscribe?lang={PageLanguage.Other(s)}" : null,
            Error = error,
        }, error is null ? StatusCodes.Status200OK : StatusCodes.Status400BadRequest);
}
