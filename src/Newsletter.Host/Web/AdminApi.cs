using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Validation;

namespace Newsletter.Web;

/// <summary>The admin HTTP API under <c>/api</c>, behind <c>Authorization: Bearer {Newsletter__AdminApiKey}</c>.</summary>
public static class AdminApi
{
    public static RouteGroupBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").AddEndpointFilter<AdminKeyFilter>().AddEndpointFilter<ProblemFilter>();
        api.MapGet("/issues/{slug}/preview", PreviewIssue)
            .WithName("PreviewIssue")
            .WithSummary("The issue's digest HTML as a subscriber of the given language would receive it");

        api.MapPost("/issues", ImportIssue).WithName("ImportIssue").WithSummary("Import an issue (the import JSON) as a draft");
        api.MapGet("/issues/{slug}", GetIssue).WithName("GetIssue").WithSummary("An issue with its items");
        api.MapPut("/issues/{slug}", PutIssue).WithName("PutIssue")
            .WithSummary("Replace a draft with the import JSON (the slug must match); a published issue only with ?correction=true");
        api.MapDelete("/issues/{slug}", DeleteIssue).WithName("DeleteIssue").WithSummary("Delete a draft; published issues are kept");
        api.MapGet("/issues/{slug}/deliveries", IssueDeliveries).WithName("IssueDeliveries")
            .WithSummary("Who got the issue: its deliveries (?email= for one address), keyset-paged with ?after=");
        api.MapPost("/issues/{slug}/publish", PublishIssue).WithName("PublishIssue").WithSummary("Publish a draft issue");
        api.MapGet("/issues", ListIssues).WithName("ListIssues").WithSummary("Issues, newest first");

        api.MapPost("/subscribers", AddSubscriber).WithName("AddSubscriber").WithSummary("Add an active subscriber");
        api.MapGet("/subscribers", ListSubscribers).WithName("ListSubscribers")
            .WithSummary("Subscribers in the order they joined, filtered by ?status=, ?cadence=, ?q= (email or name), keyset-paged with ?after= and ?limit=");
        api.MapPost("/subscribers/import", ImportSubscribers).WithName("ImportSubscribers")
            .WithSummary("Import a CSV (text/csv: email,name,cadence,language) as ?status=active|pending; the report lists rejected rows");
        api.MapGet("/subscribers/export", ExportSubscribers).WithName("ExportSubscribers").WithSummary("All subscribers as CSV (?status= to filter), streamed");
        api.MapDelete("/subscribers/{email}", EraseSubscriber).WithName("EraseSubscriber")
            .WithSummary("Erase a subscriber's personal data; an anonymous suppression keeps the address from being added again");
        api.MapGet("/subscribers/{email}", GetSubscriber).WithName("GetSubscriber").WithSummary("A subscriber's fields and status");
        api.MapGet("/subscribers/{email}/history", SubscriberHistory).WithName("SubscriberHistory")
            .WithSummary("Every change of the subscription: time, event, source, client address and user agent");
        api.MapPatch("/subscribers/{email}", UpdateSubscriber).WithName("UpdateSubscriber").WithSummary("Change cadence, language or status");

        api.MapPost("/sends", StartSend).WithName("StartSend").WithSummary("Start a digest run ({\"cadence\"}) or a broadcast ({\"issue\"})");
        api.MapGet("/sends", ListSends).WithName("ListSends").WithSummary("Recent runs, newest first");
        api.MapGet("/sends/{id:long}", GetSend).WithName("GetSend").WithSummary("A run's counts by state");
        api.MapPost("/sends/{id:long}/pause", (long id, SendLedger l, CancellationToken ct) => Control(l.PauseAsync(id, "paused by an operator", ct))).WithName("PauseSend");
        api.MapPost("/sends/{id:long}/resume", (long id, SendLedger l, CancellationToken ct) => Control(l.ResumeAsync(id, ct))).WithName("ResumeSend");
        api.MapGet("/sends/{id:long}/deliveries", RunDeliveries).WithName("RunDeliveries")
            .WithSummary("A run's deliveries with their SMTP replies, ?status=failed|uncertain|..., keyset-paged with ?after=");
        api.MapPost("/sends/{id:long}/resend", Resend).WithName("ResendSend").WithSummary("Queue a run's failed and/or uncertain deliveries again: {\"failed\": true, \"uncertain\": true}");
        api.MapGet("/sessions", async (AdminSessions sessions, CancellationToken ct) => TypedResults.Ok(await sessions.ListAsync(ct)))
            .WithName("ListSessions").WithSummary("Open dashboard sessions (opened with the current admin key, not signed out, not expired)");
        api.MapDelete("/sessions/{id:long}", async (long id, AdminSessions sessions, CancellationToken ct) =>
                await sessions.RevokeAsync(id, ct) ? TypedResults.NoContent() : throw new NotFoundException("id", $"no open session has id {id}"))
            .WithName("RevokeSession").WithSummary("End a dashboard session at once");
        api.MapPost("/sends/{id:long}/cancel", (long id, SendLedger l, CancellationToken ct) => Control(l.CancelAsync(id, ct))).WithName("CancelSend");
        return api;
    }

    public static async Task<IResult> ImportIssue(HttpRequest request, IssueStore issues, CancellationToken ct)
    {
        var document = IssueDocument.Parse(await JsonBody.ReadTextAsync(request, ct));
        var issue = await issues.ImportAsync(document, publish: false, ct);
        return TypedResults.Created($"/api/issues/{issue.Slug}", IssueJson(issue));
    }

    public static async Task<IResult> PublishIssue(string slug, IssueStore issues, CancellationToken ct)
    {
        await issues.PublishAsync(slug, ct);
        return TypedResults.Ok(IssueJson((await issues.GetAsync(slug, ct))!));
    }

    public static async Task<IResult> ListIssues(IssueStore issues, CancellationToken ct) =>
        TypedResults.Ok((await issues.ListAsync(ct: ct)).Select(IssueJson));

    public static async Task<IResult> AddSubscriber(HttpRequest request, SubscriberStore subscribers, CancellationToken ct)
    {
        var f = await JsonBody.ReadFieldsAsync(request, ["email", "name", "cadence", "language"], ct);
        var added = await subscribers.AddActiveAsync(NewSubscriber.Create(f.GetValueOrDefault("email"), f.GetValueOrDefault("name"), f.GetValueOrDefault("cadence"), f.GetValueOrDefault("language")), ct);
        return TypedResults.Created($"/api/subscribers/{Uri.EscapeDataString(added.Email)}", SubscriberJson(added));
    }

    public static async Task<IResult> GetSubscriber(string email, SubscriberStore subscribers, CancellationToken ct) =>
        await subscribers.FindByEmailAsync(RequestValues.Email(email), ct) is { } s
            ? TypedResults.Ok(SubscriberJson(s))
            : throw new NotFoundException("email", $"no subscriber has the address '{TextRules.Shorten(RequestValues.Email(email))}'");

    public static async Task<IResult> SubscriberHistory(string email, Subscriptions subscriptions, CancellationToken ct) =>
        await subscriptions.HistoryAsync(RequestValues.Email(email), ct) is { } history
            ? TypedResults.Ok(history.Select(e => new
            {
                at = DateTime.SpecifyKind(e.At, DateTimeKind.Utc),
                @event = e.Event,
                source = e.Source,
                detail = e.Detail,
                clientAddress = e.ClientAddress,
                userAgent = e.UserAgent,
            }))
            : throw new NotFoundException("email", $"no subscriber has the address '{TextRules.Shorten(RequestValues.Email(email))}'");

    public static async Task<IResult> UpdateSubscriber(string email, HttpRequest request, SubscriberStore subscribers, CancellationToken ct)
    {
        var f = await JsonBody.ReadFieldsAsync(request, ["cadence", "language", "status"], ct);
        var updated = await subscribers.UpdateAsync(RequestValues.Email(email),
            f.GetValueOrDefault("cadence") is { } c ? Wire.Parse<Cadence>("cadence", c) : null,
            f.GetValueOrDefault("language") is { } l ? Wire.Parse<Language>("language", l) : null,
            f.GetValueOrDefault("status") is { } st ? Wire.Parse<SubscriberStatus>("status", st) : null, ct);
        return TypedResults.Ok(SubscriberJson(updated));
    }

    public static async Task<IResult> StartSend(HttpRequest request, SendLedger ledger, CancellationToken ct)
    {
        var f = await JsonBody.ReadFieldsAsync(request, ["cadence", "issue"], ct);
        var cadence = f.GetValueOrDefault("cadence");
        var issue = f.GetValueOrDefault("issue");
        if ((cadence is null) == (issue is null))
            throw new InputException("cadence", "give either \"cadence\" (daily or weekly) or \"issue\" (a slug), not both or neither");
        var (run, _) = cadence is not null
            ? await ledger.StartDigestAsync(Wire.Parse<Cadence>("cadence", cadence), null, ct)
            : await ledger.StartBroadcastAsync(issue!, ct);
        return TypedResults.Accepted($"/api/sends/{run.Id}", run);
    }

    public static async Task<IResult> ListSends(SendLedger ledger, CancellationToken ct) => TypedResults.Ok(await ledger.ListAsync(50, ct));

    public static async Task<IResult> GetSend(long id, SendLedger ledger, SendReports reports, CancellationToken ct)
    {
        var run = await ledger.GetAsync(id, ct) ?? throw new NotFoundException("id", $"no run has id {id}");
        var progress = await reports.ProgressAsync(id, ct);
        return TypedResults.Ok(new
        {
            run.Id, run.Kind, run.Status, run.Issue, run.Period, run.PauseReason, run.Total, run.Queued, run.Sent, run.Retrying, run.Failed,
            run.Uncertain, run.Cancelled, run.Skipped, run.StartedAt, run.FinishedAt,
            progress.MessagesPerSecond, progress.Remaining, progress.EtaSeconds,
        });
    }

    public static async Task<IResult> RunDeliveries(long id, string? status, string? after, string? limit, SendLedger ledger, SendReports reports, CancellationToken ct)
    {
        var (from, size) = (RequestValues.Long("after", after) ?? 0, Limit(limit));
        _ = await ledger.GetAsync(id, ct) ?? throw new NotFoundException("id", $"no run has id {id}");
        DeliveryStatus? state = null;
        if (status is not null)
            state = LedgerStates.TryParse(status, out var parsed) ? parsed
                : throw new InputException("status", $"'{TextRules.Shorten(status)}' is not a delivery state ({string.Join(", ", Enum.GetValues<DeliveryStatus>().Select(LedgerStates.Name))})");
        var rows = await reports.DeliveriesAsync(id, state, from, size, ct);
        return TypedResults.Ok(Page(rows, size, r => r.Id));
    }

    public static async Task<IResult> Resend(long id, HttpRequest request, SendLedger ledger, CancellationToken ct)
    {
        var f = await JsonBody.ReadFieldsAsync(request, ["failed", "uncertain"], ct);
        bool Flag(string name) => f.GetValueOrDefault(name) switch
        {
            null or "false" => false,
            "true" => true,
            var v => throw new InputException(name, $"must be true or false (got '{TextRules.Shorten(v)}')"),
        };
        var (run, requeued) = await ledger.ResendAsync(id, Flag("failed"), Flag("uncertain"), ct);
        return TypedResults.Ok(new { run, requeued });
    }

    public static async Task<IResult> GetIssue(string slug, IssueStore issues, CancellationToken ct) =>
        await issues.GetAsync(slug, ct) is { } issue ? TypedResults.Ok(IssueDetailJson(issue)) : throw new NotFoundException("slug", $"no issue is called '{TextRules.Shorten(slug)}'");

    public static async Task<IResult> PutIssue(string slug, string? correction, HttpRequest request, IssueStore issues, CancellationToken ct)
    {
        var isCorrection = RequestValues.Bool("correction", correction) == true;
        var document = IssueDocument.Parse(await JsonBody.ReadTextAsync(request, ct));
        if (document.Slug != slug)
            throw new InputException("slug", $"the document's slug '{document.Slug}' is not the slug of this address, '{TextRules.Shorten(slug)}'");
        if (!isCorrection && await issues.GetAsync(slug, ct) is null)
        {
            var created = await issues.ImportAsync(document, publish: false, ct);
            return TypedResults.Created($"/api/issues/{created.Slug}", IssueDetailJson(created));
        }
        return TypedResults.Ok(IssueDetailJson(await issues.ImportAsync(document, publish: false, ct, correction: isCorrection)));
    }

    public static async Task<IResult> DeleteIssue(string slug, IssueStore issues, CancellationToken ct)
    {
        await issues.DeleteDraftAsync(slug, ct);
        return TypedResults.NoContent();
    }

    public static async Task<IResult> IssueDeliveries(string slug, string? email, string? after, string? limit, IssueStore issues, SendReports reports, CancellationToken ct)
    {
        var (from, size) = (RequestValues.Long("after", after) ?? 0, Limit(limit));
        var issue = await issues.GetAsync(slug, ct) ?? throw new NotFoundException("slug", $"no issue is called '{TextRules.Shorten(slug)}'");
        var rows = await reports.IssueDeliveriesAsync(issue.Id, email, from, size, ct);
        return TypedResults.Ok(Page(rows, size, r => r.Id));
    }

    public static async Task<IResult> ListSubscribers(string? status, string? cadence, string? q, string? after, string? limit, SubscriberStore subscribers, CancellationToken ct)
    {
        var size = Limit(limit);
        var rows = await subscribers.PageAsync(
            status is null ? null : Wire.Parse<SubscriberStatus>("status", status),
            cadence is null ? null : Wire.Parse<Cadence>("cadence", cadence),
            q, RequestValues.Long("after", after) ?? 0, size, ct);
        return TypedResults.Ok(new { items = rows.Select(SubscriberJson), next = Next(rows, size, r => r.Id) });
    }

    public static async Task<IResult> ImportSubscribers(HttpRequest request, string? status, SubscriberImport import, CancellationToken ct)
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

    public static async Task<IResult> EraseSubscriber(string email, SubscriberStore subscribers, CancellationToken ct)
    {
        await subscribers.EraseAsync(RequestValues.Email(email), ct);
        return TypedResults.NoContent();
    }

    private static int Limit(string? text) => RequestValues.Int("limit", text) is not { } limit ? 100 : limit is >= 1 and <= 1000 ? limit
        : throw new InputException("limit", "must be between 1 and 1000");

    private static object Page<T>(IReadOnlyList<T> rows, int limit, Func<T, long> key) => new { items = rows, next = Next(rows, limit, key) };

    /// <summary>The keyset cursor of the page after a full one; null after the last.</summary>
    private static string? Next<T>(IReadOnlyList<T> rows, int limit, Func<T, long> key) =>
        rows.Count == limit ? key(rows[^1]).ToString(System.Globalization.CultureInfo.InvariantCulture) : null;

    private static object IssueDetailJson(Issue i) => new
    {
        slug = i.Slug,
        status = i.Status == IssueStatus.Published ? "published" : "draft",
        title = i.Title,
        intro = i.Intro,
        periodFrom = i.PeriodFrom,
        periodTo = i.PeriodTo,
        publishedAt = i.PublishedAt,
        createdAt = i.CreatedAt,
        items = i.Items,
    };

    private static async Task<IResult> Control(Task<RunSummary> change) => TypedResults.Ok(await change);

    private static object IssueJson(Issue i) => new
    {
        slug = i.Slug,
        status = i.Status == IssueStatus.Published ? "published" : "draft",
        title = new { ko = i.Title.Ko, en = i.Title.En },
        publishedAt = i.PublishedAt,
        items = i.Items.Count,
    };

    private static object SubscriberJson(Subscriber s) => new
    {
        email = s.Email,
        name = s.Name,
        cadence = Wire.Name(s.Cadence),
        language = Wire.Name(s.Language),
        status = Wire.Name(s.Status),
        createdAt = s.CreatedAt,
        confirmedAt = s.ConfirmedAt,
        unsubscribedAt = s.UnsubscribedAt,
    };

    public static async Task<Results<ContentHttpResult, NotFound<ProblemDetails>, ProblemHttpResult>> PreviewIssue(
        string slug, string? language, DigestPreview preview, CancellationToken ct)
    {
        Language lang;
        try
        {
            lang = language is null ? Language.Both : Wire.Parse<Language>("language", language);
        }
        catch (InputException e)
        {
            return TypedResults.Problem(title: "Invalid request", detail: e.Message, statusCode: StatusCodes.Status400BadRequest,
                extensions: new Dictionary<string, object?> { ["field"] = e.Field });
        }
        try
        {
            var (html, _) = await preview.RenderAsync(slug, lang, ct: ct);
            return TypedResults.Content(html, "text/html; charset=utf-8");
        }
        catch (NotFoundException e)
        {
            return TypedResults.NotFound(new ProblemDetails { Title = "Not found", Detail = e.Message, Status = 404, Extensions = { ["field"] = e.Field } });
        }
    }
}

/// <summary>Turns bad input, unknown keys and conflicts into RFC 7807 problem details naming the field.</summary>
internal sealed class ProblemFilter : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        try
        {
            return await next(context);
        }
        catch (Exception e) when (e is InputException or NotFoundException or ConflictException)
        {
            var (status, title, field) = e switch
            {
                InputException i => (StatusCodes.Status400BadRequest, "Invalid request", i.Field),
                NotFoundException n => (StatusCodes.Status404NotFound, "Not found", n.Field),
                ConflictException c => (StatusCodes.Status409Conflict, "Conflict", c.Field),
                _ => (500, "", ""),
            };
            return TypedResults.Problem(title: title, detail: e.Message, statusCode: status, extensions: new Dictionary<string, object?> { ["field"] = field });
        }
    }
}

/// <summary>
/// Lets a request through only with the configured admin key, compared in constant time. With no
/// key configured the admin API is closed. A refusal says nothing about why.
/// </summary>
internal sealed class AdminKeyFilter(IOptions<NewsletterOptions> options, AuthFailures failures) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var address = http.Connection.RemoteIpAddress?.ToString();
        if (failures.Blocked(address) is { } wait)
        {
            http.Response.Headers.RetryAfter = ((int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return TypedResults.Problem(title: "Too many requests", statusCode: StatusCodes.Status429TooManyRequests);
        }
        var configured = options.Value.AdminApiKey;
        var header = http.Request.Headers.Authorization.ToString();
        var presented = header.StartsWith("Bearer ", StringComparison.Ordinal) ? header["Bearer ".Length..].Trim() : "";
        if (string.IsNullOrEmpty(configured) || !KeysEqual(configured, presented))
        {
            // Only a wrong key counts toward the lockout: a crawler that sends none cannot lock the admin out.
            if (presented.Length > 0) failures.Fail(address);
            http.Response.Headers.WWWAuthenticate = "Bearer";
            return TypedResults.Problem(title: "Unauthorized", statusCode: StatusCodes.Status401Unauthorized);
        }
        return await next(context);
    }

    // Hash both sides first so the comparison takes the same time whatever the lengths.
    internal static bool KeysEqual(string expected, string presented) =>
        CryptographicOperations.FixedTimeEquals(
            SHA256.HashData(Encoding.UTF8.GetBytes(expected)),
            SHA256.HashData(Encoding.UTF8.GetBytes(presented)));
}
