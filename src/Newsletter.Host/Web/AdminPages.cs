using System.Security.Claims;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Validation;

namespace Newsletter.Web;

/// <summary>
/// The dashboard under <c>/admin</c>: server-rendered pages from <c>templates/admin/</c>, behind a
/// login with the admin key that opens an HTTP-only, SameSite=Strict cookie session. Every form
/// carries an antiforgery token; a post without one gets 400. Actions post, then redirect to a
/// page (so a reload never repeats them).
/// </summary>
public static class AdminPages
{
    public const string Scheme = "admin";

    public static IHostApplicationBuilder AddAdminPages(this IHostApplicationBuilder builder)
    {
        builder.Services.AddAuthentication(Scheme).AddCookie(Scheme, o =>
        {
            o.Cookie.Name = "nl-admin";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.Cookie.Path = "/admin";
            o.LoginPath = "/admin/login";
            o.ExpireTimeSpan = TimeSpan.FromHours(8);
            o.SlidingExpiration = true;
        });
        // Sessions live on the server, so sign-out, revocation and a new admin key end them.
        builder.Services.AddSingleton<AdminSessions>();
        builder.Services.AddOptions<CookieAuthenticationOptions>(Scheme).Configure<AdminSessions>((o, sessions) => o.SessionStore = sessions);
        builder.Services.AddAuthorization();
        return builder;
    }

    public static WebApplication MapAdminPages(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/admin/login", LoginForm).ExcludeFromDescription();
        app.MapPost("/admin/login", Login).DisableAntiforgery().ExcludeFromDescription();
        var admin = app.MapGroup("/admin").RequireAuthorization(p => p.AddAuthenticationSchemes(Scheme).RequireAuthenticatedUser())
            .DisableAntiforgery().ExcludeFromDescription();
        admin.MapPost("/logout", Logout);
        admin.MapGet("/", Overview);
        admin.MapPost("/sends", StartSend);
        admin.MapGet("/issues", Issues);
        admin.MapPost("/issues", ImportIssue);
        admin.MapGet("/issues/{slug}/preview", Preview);
        admin.MapPost("/issues/{slug}/publish", Publish);
        admin.MapPost("/issues/{slug}/broadcast", Broadcast);
        admin.MapGet("/runs/{id:long}", Run);
        admin.MapPost("/runs/{id:long}/{action}", SteerRun);
        admin.MapGet("/subscribers", Subscribers);
        return app;
    }

    // ---- session ---------------------------------------------------------------------------

    private static Task LoginForm(HttpContext http, IAntiforgery antiforgery) =>
        RenderAsync(http, "admin/Login", new AdminLoginPage { Title = "Sign in", Token = HtmlPage.Token(http, antiforgery), SignedIn = false });

    private static async Task Login(HttpContext http, IAntiforgery antiforgery, AuthFailures failures, IOptions<NewsletterOptions> options)
    {
        var form = await ReadFormAsync(http, antiforgery);
        if (form is null) return;
        var address = http.Connection.RemoteIpAddress?.ToString();
        if (failures.Blocked(address) is { } wait)
        {
            http.Response.Headers.RetryAfter = ((int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            await RenderAsync(http, "admin/Login", new AdminLoginPage { Title = "Sign in", Token = HtmlPage.Token(http, antiforgery), SignedIn = false,
                Error = "Too many wrong keys from this address; wait a minute." }, StatusCodes.Status429TooManyRequests);
            return;
        }
        var configured = options.Value.AdminApiKey;
        var presented = form["key"].ToString();
        if (string.IsNullOrEmpty(configured) || !AdminKeyFilter.KeysEqual(configured, presented))
        {
            if (presented.Length > 0) failures.Fail(address);
            await RenderAsync(http, "admin/Login", new AdminLoginPage { Title = "Sign in", Token = HtmlPage.Token(http, antiforgery), SignedIn = false,
                Error = string.IsNullOrEmpty(configured) ? "The dashboard is closed: Newsletter__AdminApiKey is not set." : "That is not the admin key." },
                StatusCodes.Status401Unauthorized);
            return;
        }
        var session = new AuthenticationProperties();
        session.Items[AdminSessions.ClientAddressItem] = address;
        session.Items[AdminSessions.UserAgentItem] = http.Request.Headers.UserAgent.ToString();
        await http.SignInAsync(Scheme, new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, "admin")], Scheme)), session);
        http.Response.Redirect("/admin/", permanent: false);
        http.Response.StatusCode = StatusCodes.Status303SeeOther;
    }

    private static async Task Logout(HttpContext http, IAntiforgery antiforgery)
    {
        if (await ReadFormAsync(http, antiforgery) is null) return;
        await http.SignOutAsync(Scheme);
        SeeOther(http, "/admin/login");
    }

    // ---- pages -----------------------------------------------------------------------------

    private static async Task Overview(HttpContext http, IAntiforgery antiforgery, SubscriberStore subscribers, SendLedger ledger, SendReports reports,
        CancellationToken ct)
    {
        var runs = await ledger.ListAsync(10, ct);
        await RenderAsync(http, "admin/Overview", new AdminOverviewPage
        {
            Title = "Overview", Token = HtmlPage.Token(http, antiforgery), Notice = http.Request.Query["notice"],
            Counts = await subscribers.CountsAsync(ct),
            Runs = runs,
            SentChart = SvgChart.Bars(await reports.SentPerDayAsync(30, ct), "Messages sent per day, last 30 days", "messages"),
            SubscribersChart = SvgChart.Bars(await reports.SubscribersPerDayAsync(30, ct), "Active subscribers, last 30 days", "subscribers"),
        });
    }

    private static async Task StartSend(HttpContext http, IAntiforgery antiforgery, SendLedger ledger, CancellationToken ct)
    {
        var form = await ReadFormAsync(http, antiforgery);
        if (form is null) return;
        await ActAsync(http, antiforgery, async () =>
        {
            var (run, _) = await ledger.StartDigestAsync(Wire.Parse<Cadence>("cadence", form["cadence"].ToString()), null, ct);
            return $"/admin/runs/{run.Id}";
        });
    }

    private static async Task Issues(HttpContext http, IAntiforgery antiforgery, IssueStore issues, CancellationToken ct) =>
        await RenderAsync(http, "admin/Issues", new AdminIssuesPage
        {
            Title = "Issues", Token = HtmlPage.Token(http, antiforgery), Notice = http.Request.Query["notice"], Issues = await issues.ListAsync(ct: ct),
        });

    private static async Task ImportIssue(HttpContext http, IAntiforgery antiforgery, IssueStore issues, CancellationToken ct)
    {
        var form = await ReadFormAsync(http, antiforgery, 2 * 1024 * 1024);
        if (form is null) return;
        var json = form["json"].ToString();
        try
        {
            if (form.Files.GetFile("file") is { Length: > 0 } file)
            {
                using var bytes = new MemoryStream();
                await file.CopyToAsync(bytes, ct);
                json = JsonText.Decode(bytes.GetBuffer().AsSpan(0, (int)bytes.Length));
            }
            var stored = await issues.ImportAsync(IssueDocument.Parse(json), publish: false, ct);
            SeeOther(http, $"/admin/issues?notice={Uri.EscapeDataString($"Imported {stored.Slug} as a draft ({stored.Items.Count} items).")}");
        }
        catch (Exception e) when (e is InputException or ConflictException)
        {
            await RenderAsync(http, "admin/Issues", new AdminIssuesPage
            {
                Title = "Issues", Token = HtmlPage.Token(http, antiforgery), Issues = await issues.ListAsync(ct: ct), Json = json, Error = e.Message,
            }, StatusCodes.Status400BadRequest);
        }
    }

    private static async Task Preview(HttpContext http, string slug, string? language, DigestPreview preview, IAntiforgery antiforgery, CancellationToken ct)
    {
        try
        {
            var (html, _) = await preview.RenderAsync(slug, language is null ? Language.Both : Wire.Parse<Language>("language", language), ct: ct);
            http.Response.ContentType = "text/html; charset=utf-8";
            http.Response.Headers.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'self'";
            await http.Response.WriteAsync(html, ct);
        }
        catch (Exception e) when (e is InputException or NotFoundException)
        {
            await MessageAsync(http, antiforgery, "Preview", e.Message, e is InputException ? StatusCodes.Status400BadRequest : StatusCodes.Status404NotFound);
        }
    }

    private static async Task Publish(HttpContext http, string slug, IAntiforgery antiforgery, IssueStore issues, CancellationToken ct)
    {
        if (await ReadFormAsync(http, antiforgery) is null) return;
        await ActAsync(http, antiforgery, async () =>
        {
            var changed = await issues.PublishAsync(slug, ct);
            return $"/admin/issues?notice={Uri.EscapeDataString(changed ? $"Published {slug}." : $"{slug} was already published.")}";
        });
    }

    private static async Task Broadcast(HttpContext http, string slug, IAntiforgery antiforgery, SendLedger ledger, CancellationToken ct)
    {
        if (await ReadFormAsync(http, antiforgery) is null) return;
        await ActAsync(http, antiforgery, async () => $"/admin/runs/{(await ledger.StartBroadcastAsync(slug, ct)).Run.Id}");
    }

    private static async Task Run(HttpContext http, long id, IAntiforgery antiforgery, SendLedger ledger, SendReports reports, CancellationToken ct)
    {
        if (await ledger.GetAsync(id, ct) is not { } run)
        {
            await MessageAsync(http, antiforgery, "Run", $"No run has id {id}.", StatusCodes.Status404NotFound);
            return;
        }
        await RenderAsync(http, "admin/Run", new AdminRunPage
        {
            Title = $"Run {id}", Token = HtmlPage.Token(http, antiforgery), Notice = http.Request.Query["notice"], Run = run,
            Progress = await reports.ProgressAsync(id, ct),
            Failed = await reports.DeliveriesAsync(id, DeliveryStatus.Failed, 0, 50, ct),
            Uncertain = await reports.DeliveriesAsync(id, DeliveryStatus.Uncertain, 0, 50, ct),
            RefreshSeconds = run.State == RunStatus.Sending ? 2 : null,
        });
    }

    private static async Task SteerRun(HttpContext http, long id, string action, IAntiforgery antiforgery, SendLedger ledger, CancellationToken ct)
    {
        if (await ReadFormAsync(http, antiforgery) is null) return;
        await ActAsync(http, antiforgery, async () =>
        {
            var notice = action switch
            {
                "pause" => (await ledger.PauseAsync(id, "paused from the dashboard", ct)).Status,
                "resume" => (await ledger.ResumeAsync(id, ct)).Status,
                "cancel" => (await ledger.CancelAsync(id, ct)).Status,
                "resend-failed" => $"{(await ledger.ResendAsync(id, true, false, ct)).Requeued} queued again",
                "resend-uncertain" => $"{(await ledger.ResendAsync(id, false, true, ct)).Requeued} queued again",
                _ => throw new InputException("action", $"'{TextRules.Shorten(action)}' is not something a run can do"),
            };
            return $"/admin/runs/{id}?notice={Uri.EscapeDataString(notice)}";
        });
    }

    private static async Task Subscribers(HttpContext http, string? q, string? status, string? cadence, string? after, IAntiforgery antiforgery,
        SubscriberStore subscribers, CancellationToken ct)
    {
        try
        {
            const int pageSize = 50;
            var rows = await subscribers.PageAsync(
                string.IsNullOrEmpty(status) ? null : Wire.Parse<SubscriberStatus>("status", status),
                string.IsNullOrEmpty(cadence) ? null : Wire.Parse<Cadence>("cadence", cadence),
                q, RequestValues.Long("after", after) ?? 0, pageSize, ct);
            await RenderAsync(http, "admin/Subscribers", new AdminSubscribersPage
            {
                Title = "Subscribers", Token = HtmlPage.Token(http, antiforgery), Subscribers = rows, Counts = await subscribers.CountsAsync(ct),
                Query = q, Status = status, Cadence = cadence,
                NextUrl = rows.Count == pageSize
                    ? $"/admin/subscribers?q={Uri.EscapeDataString(q ?? "")}&status={Uri.EscapeDataString(status ?? "")}&cadence={Uri.EscapeDataString(cadence ?? "")}&after={rows[^1].Id}"
                    : null,
            });
        }
        catch (InputException e)
        {
            await MessageAsync(http, antiforgery, "Subscribers", e.Message, StatusCodes.Status400BadRequest);
        }
    }

    // ---- helpers ---------------------------------------------------------------------------

    /// <summary>Runs an action and redirects to where it says; bad input or a conflict gets a 4xx page instead.</summary>
    private static async Task ActAsync(HttpContext http, IAntiforgery antiforgery, Func<Task<string>> action)
    {
        try
        {
            SeeOther(http, await action());
        }
        catch (Exception e) when (e is InputException or NotFoundException or ConflictException)
        {
            var status = e switch { NotFoundException => 404, ConflictException => 409, _ => 400 };
            await MessageAsync(http, antiforgery, "Not done", e.Message, status);
        }
    }

    private static Task MessageAsync(HttpContext http, IAntiforgery antiforgery, string title, string text, int status) =>
        RenderAsync(http, "admin/Message", new AdminMessagePage { Title = title, Token = HtmlPage.Token(http, antiforgery), Paragraphs = [text], Error = text }, status);

    private static void SeeOther(HttpContext http, string location)
    {
        http.Response.StatusCode = StatusCodes.Status303SeeOther;
        http.Response.Headers.Location = location;
    }

    /// <summary>Reads a form post and checks its antiforgery token; on failure answers 400 and returns null.</summary>
    private static async Task<IFormCollection?> ReadFormAsync(HttpContext http, IAntiforgery antiforgery, long maxBytes = 64 * 1024)
    {
        if (http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
            size.MaxRequestBodySize = maxBytes;
        try
        {
            if (!http.Request.HasFormContentType) throw new InvalidDataException("the request is not a form");
            var form = await http.Request.ReadFormAsync(http.RequestAborted);
            await antiforgery.ValidateRequestAsync(http);
            return form;
        }
        catch (AntiforgeryValidationException)
        {
            await MessageAsync(http, antiforgery, "Form expired", "The form has no valid antiforgery token: reload the page and try again.", StatusCodes.Status400BadRequest);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or BadHttpRequestException)
        {
            await MessageAsync(http, antiforgery, "Bad request", "The form could not be read: " + e.Message, StatusCodes.Status400BadRequest);
        }
        return null;
    }

    private static Task RenderAsync<T>(HttpContext http, string template, T model, int status = StatusCodes.Status200OK) where T : AdminView =>
        HtmlPage.WriteAsync(http, template, model, status,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            "same-origin", noStore: true);
}
