using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using Newsletter.Bounces;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Validation;

namespace Newsletter.Web.Api;

/// <summary>
/// The admin HTTP API under <c>/api</c>, behind <c>Authorization: Bearer {Newsletter__AdminApiKey}</c>
/// (<see cref="AdminAuthentication.Policy"/>). Each route binds a request record or route and query
/// values, calls the core and returns a typed result; whatever the core refuses is answered by
/// <see cref="WebErrors"/> as problem details naming the field.
/// </summary>
public static class AdminApi
{
    public static RouteGroupBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").RequireAuthorization(AdminAuthentication.Policy)
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status429TooManyRequests);
        api.MapGet("/issues/{slug}/preview", PreviewIssue).Produces<string>(StatusCodes.Status200OK, "text/html")
            .WithName("PreviewIssue")
            .WithSummary("The issue's digest HTML as a subscriber of the given language would receive it");

        api.MapPost("/issues", ImportIssue).Describes<IssueImportRequest>("application/json").WithName("ImportIssue").WithSummary("Import an issue (the import JSON) as a draft");
        api.MapGet("/issues/{slug}", GetIssue).WithName("GetIssue").WithSummary("An issue with its items");
        api.MapPut("/issues/{slug}", PutIssue).Describes<IssueImportRequest>("application/json").WithName("PutIssue")
            .WithSummary("Replace a draft with the import JSON (the slug must match); a published issue only with ?correction=true");
        api.MapDelete("/issues/{slug}", DeleteIssue).WithName("DeleteIssue").WithSummary("Delete a draft; published issues are kept");
        api.MapGet("/issues/{slug}/deliveries", IssueDeliveries).WithName("IssueDeliveries")
            .WithSummary("Who got the issue: its deliveries (?email= for one address), keyset-paged with ?after=");
        api.MapGet("/issues/{slug}/clicks", async Task<Ok<Newsletter.Tracking.IssueClicks>> (string slug, Newsletter.Tracking.ClickReports reports, CancellationToken ct) =>
                TypedResults.Ok(await reports.GetAsync(slug, ct) ?? throw NoIssue(slug)))
            .WithName("IssueClicks").WithSummary("Unique human clickers per paper and link, by language and cadence; the click-to-delivered rate; what the filter removed");
        api.MapPost("/issues/{slug}/publish", PublishIssue).WithName("PublishIssue").WithSummary("Publish a draft issue");
        api.MapGet("/issues", ListIssues).WithName("ListIssues").WithSummary("Issues, newest first");

        api.MapPost("/subscribers", AddSubscriber).Describes<NewSubscriberRequest>("application/json").WithName("AddSubscriber").WithSummary("Add an active subscriber");
        api.MapGet("/subscribers", ListSubscribers).WithName("ListSubscribers")
            .WithSummary("Subscribers in the order they joined, filtered by ?status=, ?cadence=, ?q= (email or name), keyset-paged with ?after= and ?limit=");
        api.MapPost("/subscribers/import", ImportSubscribers).Describes<string>("text/csv").WithName("ImportSubscribers")
            .WithSummary("Import a CSV (text/csv: email,name,cadence,language) as ?status=active|pending; the report lists rejected rows");
        api.MapGet("/subscribers/export", ExportSubscribers).Produces<string>(StatusCodes.Status200OK, "text/csv").WithName("ExportSubscribers").WithSummary("All subscribers as CSV (?status= to filter), streamed");
        api.MapDelete("/subscribers/{email}", EraseSubscriber).WithName("EraseSubscriber")
            .WithSummary("Erase a subscriber's personal data; an anonymous suppression keeps the address from being added again");
        api.MapGet("/subscribers/{email}", GetSubscriber).WithName("GetSubscriber").WithSummary("A subscriber's fields and status");
        api.MapGet("/subscribers/{email}/history", SubscriberHistory).WithName("SubscriberHistory")
            .WithSummary("Every change of the subscription: time, event, source, client address and user agent");
        api.MapPatch("/subscribers/{email}", UpdateSubscriber).Describes<SubscriberChangeRequest>("application/json").WithName("UpdateSubscriber").WithSummary("Change cadence, language, delivery time or status");

        api.MapPost("/sends", StartSend).Describes<StartSendRequest>("application/json").WithName("StartSend").WithSummary("Start a digest run ({\"cadence\"}) or a broadcast ({\"issue\"})");
        api.MapGet("/sends", ListSends).WithName("ListSends").WithSummary("Recent runs, newest first");
        api.MapGet("/sends/{id:long}", GetSend).WithName("GetSend").WithSummary("A run's counts by state");
        api.MapPost("/sends/{id:long}/pause", async Task<Ok<RunSummary>> (long id, SendLedger l, CancellationToken ct) => TypedResults.Ok(await l.PauseAsync(id, "paused by an operator", ct)))
            .WithName("PauseSend").WithSummary("Pause a run: nothing more is sent until it is resumed");
        api.MapPost("/sends/{id:long}/resume", async Task<Ok<RunSummary>> (long id, SendLedger l, CancellationToken ct) => TypedResults.Ok(await l.ResumeAsync(id, ct)))
            .WithName("ResumeSend").WithSummary("Resume a paused run");
        api.MapGet("/sends/{id:long}/deliveries", RunDeliveries).WithName("RunDeliveries")
            .WithSummary("A run's deliveries with their SMTP replies, ?status=failed|uncertain|..., keyset-paged with ?after=");
        api.MapPost("/sends/{id:long}/resend", Resend).Describes<ResendRequest>("application/json").WithName("ResendSend").WithSummary("Queue a run's failed and/or uncertain deliveries again: {\"failed\": true, \"uncertain\": true}");
        api.MapGet("/bounces", ListBounces).WithName("ListBounces")
            .WithSummary("Bounces and complaints received after the handoff, oldest first, ?kind=hard|soft|block|complaint, keyset-paged with ?after= and ?limit=");
        api.MapGet("/sessions", async Task<Ok<IReadOnlyList<AdminSession>>> (AdminSessions sessions, CancellationToken ct) => TypedResults.Ok(await sessions.ListAsync(ct)))
            .WithName("ListSessions").WithSummary("Open dashboard sessions (opened with the current admin key, not signed out, not expired)");
        api.MapDelete("/sessions/{id:long}", async Task<NoContent> (long id, AdminSessions sessions, CancellationToken ct) =>
                await sessions.RevokeAsync(id, ct) ? TypedResults.NoContent() : throw new NotFoundException("id", $"no open session has id {id}"))
            .WithName("RevokeSession").WithSummary("End a dashboard session at once");
        api.MapPost("/sends/{id:long}/cancel", async Task<Ok<RunSummary>> (long id, SendLedger l, CancellationToken ct) => TypedResults.Ok(await l.CancelAsync(id, ct)))
            .WithName("CancelSend").WithSummary("Cancel a run: its queued deliveries are not sent");
        return api;
    }

    public static async Task<Created<IssueSummary>> ImportIssue(IssueImportRequest body, IssueStore issues, CancellationToken ct)
    {
        var issue = await issues.ImportAsync(body.Document, publish: false, ct);
        return TypedResults.Created($"/api/issues/{issue.Slug}", IssueSummary.Of(issue));
    }

    public static async Task<Ok<IssueSummary>> PublishIssue(string slug, IssueStore issues, CancellationToken ct)
    {
        await issues.PublishAsync(slug, ct);
        return TypedResults.Ok(IssueSummary.Of((await issues.GetAsync(slug, ct))!));
    }

    public static async Task<Ok<IEnumerable<IssueSummary>>> ListIssues(IssueStore issues, CancellationToken ct) =>
        TypedResults.Ok((await issues.ListAsync(ct: ct)).Select(IssueSummary.Of));

    public static async Task<Ok<IssueDetail>> GetIssue(string slug, IssueStore issues, CancellationToken ct) =>
        TypedResults.Ok(IssueDetail.Of(await issues.GetAsync(slug, ct) ?? throw NoIssue(slug)));

    public static async Task<Results<Created<IssueDetail>, Ok<IssueDetail>>> PutIssue(string slug, string? correction, IssueImportRequest body, IssueStore issues,
        CancellationToken ct)
    {
        var isCorrection = RequestValues.Bool("correction", correction) == true;
        var document = body.Document;
        if (document.Slug != slug)
            throw new InputException("slug", $"the document's slug '{document.Slug}' is not the slug of this address, '{TextRules.Shorten(slug)}'");
        if (!isCorrection && await issues.GetAsync(slug, ct) is null)
        {
            var created = await issues.ImportAsync(document, publish: false, ct);
            return TypedResults.Created($"/api/issues/{created.Slug}", IssueDetail.Of(created));
        }
        return TypedResults.Ok(IssueDetail.Of(await issues.ImportAsync(document, publish: false, ct, correction: isCorrection)));
    }

    public static async Task<NoContent> DeleteIssue(string slug, IssueStore issues, CancellationToken ct)
    {
        await issues.DeleteDraftAsync(slug, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Ok<Page<DeliveryRow>>> IssueDeliveries(string slug, string? email, string? after, string? limit, IssueStore issues, SendReports reports,
        CancellationToken ct)
    {
        var (from, size) = (RequestValues.Long("after", after) ?? 0, Limit(limit));
        var issue = await issues.GetAsync(slug, ct) ?? throw NoIssue(slug);
        return TypedResults.Ok(Page<DeliveryRow>.Of(await reports.IssueDeliveriesAsync(issue.Id, email, from, size, ct), size, r => r.Id));
    }

    public static async Task<ContentHttpResult> PreviewIssue(string slug, string? language, DigestPreview preview, CancellationToken ct)
    {
        var lang = language is null ? Language.Both : Wire.Parse<Language>("language", language);
        var (html, _) = await preview.RenderAsync(slug, lang, ct: ct);
        return TypedResults.Content(html, "text/html; charset=utf-8");
    }

    public static async Task<Created<SubscriberResponse>> AddSubscriber(NewSubscriberRequest body, SubscriberStore subscribers, CancellationToken ct)
    {
        var added = await subscribers.AddActiveAsync(NewSubscriber.Create(body.Email, body.Name, body.Cadence, body.Language, body.Time), ct);
        return TypedResults.Created($"/api/subscribers/{Uri.EscapeDataString(added.Email)}", SubscriberResponse.Of(added));
    }

    public static async Task<Ok<SubscriberResponse>> GetSubscriber(string email, SubscriberStore subscribers, CancellationToken ct) =>
        TypedResults.Ok(SubscriberResponse.Of(await subscribers.FindByEmailAsync(RequestValues.Email(email), ct) ?? throw NoSubscriber(email)));

    public static async Task<Ok<IEnumerable<HistoryEntry>>> SubscriberHistory(string email, Subscriptions subscriptions, CancellationToken ct) =>
        TypedResults.Ok((await subscriptions.HistoryAsync(RequestValues.Email(email), ct) ?? throw NoSubscriber(email)).Select(HistoryEntry.Of));

    public static async Task<Ok<SubscriberResponse>> UpdateSubscriber(string email, SubscriberChangeRequest body, SubscriberStore subscribers, CancellationToken ct)
    {
        var given = DeliveryTime.Parse(body.TimeZone, body.Hour, body.Weekday, "timeZone", "hour", "weekday");
        DeliveryTime? time = null;
        if (body.Named is not (false, false, false))
        {
            // Fields the body leaves out stay as they are; a null one goes back to the default.
            var current = (await subscribers.FindByEmailAsync(RequestValues.Email(email), ct) ?? throw NoSubscriber(email)).Time;
            time = new DeliveryTime(body.Named.Zone ? given.TimeZone : current.TimeZone, body.Named.Hour ? given.Hour : current.Hour,
                body.Named.Weekday ? given.WeeklyDay : current.WeeklyDay);
        }
        var updated = await subscribers.UpdateAsync(RequestValues.Email(email),
            body.Cadence is { } c ? Wire.Parse<Cadence>("cadence", c) : null,
            body.Language is { } l ? Wire.Parse<Language>("language", l) : null,
            body.Status is { } st ? Wire.Parse<SubscriberStatus>("status", st) : null, time, ct);
        return TypedResults.Ok(SubscriberResponse.Of(updated));
    }

    public static async Task<Ok<Page<SubscriberResponse>>> ListSubscribers(string? status, string? cadence, string? q, string? after, string? limit,
        SubscriberStore subscribers, CancellationToken ct)
    {
        var size = Limit(limit);
        var rows = await subscribers.PageAsync(
            status is null ? null : Wire.Parse<SubscriberStatus>("status", status),
            cadence is null ? null : Wire.Parse<Cadence>("cadence", cadence),
            q, RequestValues.Long("after", after) ?? 0, size, ct);
        var page = Page<Subscriber>.Of(rows, size, r => r.Id);
        return TypedResults.Ok(new Page<SubscriberResponse>(rows.Select(SubscriberResponse.Of).ToList(), page.Next));
    }

    public static async Task<Ok<ImportReport>> ImportSubscribers(HttpRequest request, string? status, SubscriberImport import, CancellationToken ct)
    {
        if (request.ContentType is not { } type || !type.StartsWith("text/csv", StringComparison.OrdinalIgnoreCase))
            throw new InputException("Content-Type", "must be text/csv");
        // The row limit bounds an import, not the request size. The CSV reader streams the body
        // synchronously (one admin import at a time holds one thread).
        if (request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
            size.MaxRequestBodySize = null;
        if (request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpBodyControlFeature>() is { } body)
            body.AllowSynchronousIO = true;
        var report = await import.ImportAsync(request.Body, status is null ? SubscriberStatus.Active : Wire.Parse<SubscriberStatus>("status", status), null, ct);
        return TypedResults.Ok(report);
    }

    public static async Task ExportSubscribers(HttpContext http, string? status, SubscriberImport import, CancellationToken ct)
    {
        var filter = status is null ? (SubscriberStatus?)null : Wire.Parse<SubscriberStatus>("status", status);
        http.Response.ContentType = "text/csv; charset=utf-8";
        http.Response.Headers.ContentDisposition = "attachment; filename=subscribers.csv";
        await using var writer = new StreamWriter(http.Response.Body, new System.Text.UTF8Encoding(false), 64 * 1024);
        await import.ExportAsync(writer, filter, ct);
    }

    public static async Task<NoContent> EraseSubscriber(string email, SubscriberStore subscribers, CancellationToken ct)
    {
        await subscribers.EraseAsync(RequestValues.Email(email), ct);
        return TypedResults.NoContent();
    }

    public static async Task<Accepted<RunSummary>> StartSend(StartSendRequest body, SendLedger ledger, CancellationToken ct)
    {
        if ((body.Cadence is null) == (body.Issue is null))
            throw new InputException("cadence", "give either \"cadence\" (daily or weekly) or \"issue\" (a slug), not both or neither");
        var (run, _) = body.Cadence is not null
            ? await ledger.StartDigestAsync(Wire.Parse<Cadence>("cadence", body.Cadence), null, ct)
            : await ledger.StartBroadcastAsync(body.Issue!, ct);
        return TypedResults.Accepted($"/api/sends/{run.Id}", run);
    }

    public static async Task<Ok<IReadOnlyList<RunSummary>>> ListSends(SendLedger ledger, CancellationToken ct) => TypedResults.Ok(await ledger.ListAsync(50, ct));

    public static async Task<Ok<RunReport>> GetSend(long id, SendLedger ledger, SendReports reports, Newsletter.Scheduling.SendForecast forecast, CancellationToken ct)
    {
        var run = await ledger.GetAsync(id, ct) ?? throw NoRun(id);
        return TypedResults.Ok(RunReport.Of(run, await reports.ProgressAsync(id, ct), await Admin.AdminPages.ScheduledLaterAsync(run, forecast, ct)));
    }

    public static async Task<Ok<Page<DeliveryRow>>> RunDeliveries(long id, string? status, string? after, string? limit, SendLedger ledger, SendReports reports,
        CancellationToken ct)
    {
        var (from, size) = (RequestValues.Long("after", after) ?? 0, Limit(limit));
        _ = await ledger.GetAsync(id, ct) ?? throw NoRun(id);
        DeliveryStatus? state = null;
        if (status is not null)
            state = LedgerStates.TryParse(status, out var parsed) ? parsed
                : throw new InputException("status", $"'{TextRules.Shorten(status)}' is not a delivery state ({string.Join(", ", Enum.GetValues<DeliveryStatus>().Select(LedgerStates.Name))})");
        return TypedResults.Ok(Page<DeliveryRow>.Of(await reports.DeliveriesAsync(id, state, from, size, ct), size, r => r.Id));
    }

    public static async Task<Ok<ResendResponse>> Resend(long id, ResendRequest body, SendLedger ledger, CancellationToken ct)
    {
        var (run, requeued) = await ledger.ResendAsync(id, body.Failed ?? false, body.Uncertain ?? false, ct);
        return TypedResults.Ok(new ResendResponse(run, requeued));
    }

    public static async Task<Ok<Page<BounceEvent>>> ListBounces(string? kind, string? after, string? limit, BounceEvents bounces, CancellationToken ct)
    {
        var size = Limit(limit);
        var rows = await bounces.PageAsync(kind is null ? null : BounceEvents.ParseKind("kind", kind), RequestValues.Long("after", after) ?? 0, size, ct);
        return TypedResults.Ok(Page<BounceEvent>.Of(rows, size, r => r.Id));
    }

    private static int Limit(string? text) => RequestValues.Int("limit", text) is not { } limit ? 100 : limit is >= 1 and <= 1000 ? limit
        : throw new InputException("limit", "must be between 1 and 1000");

    private static NotFoundException NoIssue(string slug) => new("slug", $"no issue is called '{TextRules.Shorten(slug)}'");

    private static NotFoundException NoSubscriber(string email) => new("email", $"no subscriber has the address '{TextRules.Shorten(RequestValues.Email(email))}'");

    private static NotFoundException NoRun(long id) => new("id", $"no run has id {id}");
}
