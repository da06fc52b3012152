using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Newsletter.Delivery;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Validation;

namespace Newsletter.Web.Admin;

/// <summary>
/// The dashboard under <c>/admin</c>: server-rendered pages from <c>templates/admin/</c>, behind a
/// login with the admin key that opens an HTTP-only, SameSite=Strict cookie session
/// (<see cref="AdminAuthentication.Policy"/>). Every form carries an antiforgery token
/// (<see cref="FormPost"/>). Actions post, then redirect to a page (so a reload never repeats
/// them); what the core refuses is shown on a dashboard page with the status of
/// <see cref="WebErrors"/>.
/// </summary>
public static class AdminPages
{
    private const long MaxFormBytes = 64 * 1024;
    private const long MaxImportBytes = 2 * 1024 * 1024;

    private static readonly PagePolicy Policy = new(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        "same-origin");

    public static WebApplication MapAdminPages(this WebApplication app)
    {
        var errors = new AdminErrorPages();
        app.MapGet("/admin/login", LoginForm).WithMetadata(errors).ExcludeFromDescription();
        app.MapPost("/admin/login", Login).WithMetadata(errors).ExcludeFromDescription();
        var admin = app.MapGroup("/admin").RequireAuthorization(AdminAuthentication.Policy).WithMetadata(errors).ExcludeFromDescription();
        admin.MapPost("/logout", (Delegate)Logout); // a route handler (its result is written), not a RequestDelegate
        admin.MapGet("/", Overview);
        admin.MapPost("/sends", StartSend);
        admin.MapGet("/issues", Issues);
        admin.MapPost("/issues", ImportIssue);
        admin.MapGet("/issues/{slug}/preview", Preview);
        admin.MapGet("/issues/{slug}", IssueClicks);
        admin.MapPost("/issues/{slug}/publish", Publish);
        admin.MapPost("/issues/{slug}/broadcast", Broadcast);
        admin.MapGet("/runs/{id:long}", Run);
        admin.MapPost("/runs/{id:long}/{action}", SteerRun);
        admin.MapGet("/subscribers", Subscribers);
        return app;
    }

    // ---- session ---------------------------------------------------------------------------

    private static IResult LoginForm(HttpContext http) => Page(http, "admin/Login", new AdminLoginPage { Title = "Sign in", SignedIn = false });

    private static async Task<IResult> Login(HttpContext http, AdminKey key)
    {
        var form = await FormPost.ReadAsync(http, MaxFormBytes, "key");
        var address = http.Connection.RemoteIpAddress?.ToString();
        var (check, wait) = key.Check(address, form.Value("key") ?? "");
        if (check == AdminKeyCheck.Accepted)
        {
            var session = new AuthenticationProperties();
            session.Items[AdminSessions.ClientAddressItem] = address;
            session.Items[AdminSessions.UserAgentItem] = http.Request.Headers.UserAgent.ToString();
            await http.SignInAsync(AdminAuthentication.CookieScheme, AdminAuthentication.Admin(AdminAuthentication.CookieScheme), session);
            return new SeeOtherResult("/admin/");
        }
        if (check == AdminKeyCheck.Blocked) http.Response.Headers.RetryAfter = AdminKey.RetryAfter(wait);
        var (error, status) = check switch
        {
            AdminKeyCheck.Blocked => ("Too many wrong keys from this address; wait a minute.", StatusCodes.Status429TooManyRequests),
            AdminKeyCheck.Closed => ("The dashboard is closed: Newsletter__AdminApiKey is not set.", StatusCodes.Status401Unauthorized),
            _ => ("That is not the admin key.", StatusCodes.Status401Unauthorized),
        };
        return Page(http, "admin/Login", new AdminLoginPage { Title = "Sign in", SignedIn = false, Error = error }, status);
    }

    private static async Task<IResult> Logout(HttpContext http)
    {
        await FormPost.ReadAsync(http, MaxFormBytes);
        await http.SignOutAsync(AdminAuthentication.CookieScheme);
        return new SeeOtherResult("/admin/login");
    }

    // ---- pages -----------------------------------------------------------------------------

    /// <summary>Gmail's line: a sender whose spam-complaint rate stays above it is throttled or blocked.</summary>
    private const double ComplaintLimit = 0.003;

    private static async Task<IResult> Overview(HttpContext http, string? notice, SubscriberStore subscribers, SendLedger ledger, SendReports reports,
        Newsletter.Bounces.BounceEvents bounces, Newsletter.Scheduling.SendForecast forecast, CancellationToken ct) =>
        Page(http, "admin/Overview", new AdminOverviewPage
        {
            Title = "Overview", Notice = notice,
            Counts = await subscribers.CountsAsync(ct),
            Runs = await ledger.ListAsync(10, ct),
            SentChart = SvgChart.Bars(await reports.SentPerDayAsync(30, ct), "Messages sent per day, last 30 days", "messages"),
            SubscribersChart = SvgChart.Bars(await reports.SubscribersPerDayAsync(30, ct), "Active subscribers, last 30 days", "subscribers"),
            ComplaintsChart = SvgChart.Rates(await bounces.PerRunAsync(20, ct: ct), "Complaint rate per run, last 20 runs", ComplaintLimit),
            ForecastChart = SvgChart.Hours(await forecast.NextDayAsync(ct), "Readers due in the next 24 hours, by hour"),
        });

    private static async Task<IResult> StartSend(HttpContext http, SendLedger ledger, CancellationToken ct)
    {
        var form = await FormPost.ReadAsync(http, MaxFormBytes, "cadence");
        var (run, _) = await ledger.StartDigestAsync(Wire.Parse<Cadence>("cadence", form.Value("cadence")), null, ct);
        return new SeeOtherResult($"/admin/runs/{run.Id}");
    }

    private static async Task<IResult> Issues(HttpContext http, string? notice, IssueStore issues, CancellationToken ct) =>
        Page(http, "admin/Issues", new AdminIssuesPage { Title = "Issues", Notice = notice, Issues = await issues.ListAsync(ct: ct) });

    private static async Task<IResult> IssueClicks(HttpContext http, string slug, Newsletter.Tracking.ClickReports reports, CancellationToken ct)
    {
        var clicks = await reports.GetAsync(slug, ct) ?? throw new NotFoundException("slug", $"no issue '{slug}'");
        return Page(http, "admin/Issue", new AdminIssueClicksPage
        {
            Title = $"Issue {slug}", Clicks = clicks, Chart = SvgChart.Ranked(clicks.Papers, "Readers per paper"),
        });
    }

    private static async Task<IResult> ImportIssue(HttpContext http, IssueStore issues, CancellationToken ct)
    {
        var form = await FormPost.ReadAsync(http, MaxImportBytes, "json", "file"); // an empty file input arrives as a field
        var json = form.Value("json") ?? "";
        try
        {
            if (form.Files.GetFile("file") is { Length: > 0 } file)
            {
                using var bytes = new MemoryStream();
                await file.CopyToAsync(bytes, ct);
                json = JsonText.Decode(bytes.GetBuffer().AsSpan(0, (int)bytes.Length));
            }
            var stored = await issues.ImportAsync(IssueDocument.Parse(json), publish: false, ct);
            return new SeeOtherResult($"/admin/issues?notice={Uri.EscapeDataString($"Imported {stored.Slug} as a draft ({stored.Items.Count} items).")}");
        }
        catch (Exception e) when (WebErrors.Classify(e) is { Status: StatusCodes.Status400BadRequest or StatusCodes.Status409Conflict })
        {
            // The form again, with what was pasted and what is wrong with it.
            return Page(http, "admin/Issues", new AdminIssuesPage { Title = "Issues", Issues = await issues.ListAsync(ct: ct), Json = json, Error = e.Message },
                StatusCodes.Status400BadRequest);
        }
    }

    private static async Task<IResult> Preview(string slug, string? language, DigestPreview preview, CancellationToken ct)
    {
        var (html, _) = await preview.RenderAsync(slug, language is null ? Language.Both : Wire.Parse<Language>("language", language), ct: ct);
        return new HtmlResult(async http =>
        {
            http.Response.ContentType = "text/html; charset=utf-8";
            http.Response.Headers.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'self'";
            await http.Response.WriteAsync(html, http.RequestAborted);
        }, StatusCodes.Status200OK);
    }

    private static async Task<IResult> Publish(HttpContext http, string slug, IssueStore issues, CancellationToken ct)
    {
        await FormPost.ReadAsync(http, MaxFormBytes);
        var changed = await issues.PublishAsync(slug, ct);
        return new SeeOtherResult($"/admin/issues?notice={Uri.EscapeDataString(changed ? $"Published {slug}." : $"{slug} was already published.")}");
    }

    private static async Task<IResult> Broadcast(HttpContext http, string slug, SendLedger ledger, CancellationToken ct)
    {
        await FormPost.ReadAsync(http, MaxFormBytes);
        return new SeeOtherResult($"/admin/runs/{(await ledger.StartBroadcastAsync(slug, ct)).Run.Id}");
    }

    private static async Task<IResult> Run(HttpContext http, long id, string? notice, SendLedger ledger, SendReports reports,
        Newsletter.Bounces.BounceEvents bounces, Newsletter.Scheduling.SendForecast forecast, CancellationToken ct)
    {
        var run = await ledger.GetAsync(id, ct) ?? throw new NotFoundException("id", $"No run has id {id}.");
        return Page(http, "admin/Run", new AdminRunPage
        {
            Title = $"Run {id}", Notice = notice, Run = run,
            Progress = await reports.ProgressAsync(id, ct),
            Failed = await reports.DeliveriesAsync(id, DeliveryStatus.Failed, 0, 50, ct),
            Uncertain = await reports.DeliveriesAsync(id, DeliveryStatus.Uncertain, 0, 50, ct),
            Bounces = (await bounces.PerRunAsync(1, id, ct))[0],
            Later = await ScheduledLaterAsync(run, forecast, ct),
            RefreshSeconds = run.State == RunStatus.Sending ? 2 : null,
        });
    }

    /// <summary>Readers of a scheduled run whose local delivery time is still to come, per UTC hour (none for a run an admin started).</summary>
    internal static async Task<IReadOnlyList<(DateTimeOffset Hour, long Readers)>> ScheduledLaterAsync(RunSummary run, Newsletter.Scheduling.SendForecast forecast,
        CancellationToken ct) =>
        run.Period is { } period && run.Kind is "daily" or "weekly" && run.IsOpen
            ? await forecast.LaterInRunByHourAsync(Wire.Parse<Cadence>("kind", run.Kind), DateOnly.FromDateTime(period), ct)
            : [];

    private static async Task<IResult> SteerRun(HttpContext http, long id, string action, SendLedger ledger, CancellationToken ct)
    {
        await FormPost.ReadAsync(http, MaxFormBytes);
        var notice = action switch
        {
            "pause" => (await ledger.PauseAsync(id, "paused from the dashboard", ct)).Status,
            "resume" => (await ledger.ResumeAsync(id, ct)).Status,
            "cancel" => (await ledger.CancelAsync(id, ct)).Status,
            "resend-failed" => $"{(await ledger.ResendAsync(id, true, false, ct)).Requeued} queued again",
            "resend-uncertain" => $"{(await ledger.ResendAsync(id, false, true, ct)).Requeued} queued again",
            _ => throw new InputException("action", $"'{TextRules.Shorten(action)}' is not something a run can do"),
        };
        return new SeeOtherResult($"/admin/runs/{id}?notice={Uri.EscapeDataString(notice)}");
    }

    private static async Task<IResult> Subscribers(HttpContext http, string? q, string? status, string? cadence, string? after, SubscriberStore subscribers,
        CancellationToken ct)
    {
        const int pageSize = 50;
        var rows = await subscribers.PageAsync(
            string.IsNullOrEmpty(status) ? null : Wire.Parse<SubscriberStatus>("status", status),
            string.IsNullOrEmpty(cadence) ? null : Wire.Parse<Cadence>("cadence", cadence),
            q, RequestValues.Long("after", after) ?? 0, pageSize, ct);
        return Page(http, "admin/Subscribers", new AdminSubscribersPage
        {
            Title = "Subscribers", Subscribers = rows, Counts = await subscribers.CountsAsync(ct),
            Query = q, Status = status, Cadence = cadence,
            NextUrl = rows.Count == pageSize
                ? $"/admin/subscribers?q={Uri.EscapeDataString(q ?? "")}&status={Uri.EscapeDataString(status ?? "")}&cadence={Uri.EscapeDataString(cadence ?? "")}&after={rows[^1].Id}"
                : null,
        });
    }

    // ---- pages and errors -------------------------------------------------------------------

    /// <summary>A dashboard page (never cached), with the antiforgery field its forms carry.</summary>
    internal static HtmlResult Page<T>(HttpContext http, string template, T model, int status = StatusCodes.Status200OK) where T : AdminView
    {
        model.Token = HtmlPage.Token(http);
        return new HtmlResult(h => HtmlPage.WriteAsync(h, template, model, status, Policy, noStore: true), status);
    }

    /// <summary>A refused request on a dashboard page: the error's title and what is wrong.</summary>
    private sealed class AdminErrorPages : IErrorPresenter
    {
        public Task PresentAsync(HttpContext http, WebError error) =>
            Page(http, "admin/Message", new AdminMessagePage { Title = error.Title, Paragraphs = [error.Detail], Error = error.Detail }, error.Status).ExecuteAsync(http);
    }
}
