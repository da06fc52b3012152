using System.ComponentModel;
using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Newsletter.Delivery;
using Newsletter.Issues;
using Newsletter.Subscribers;

namespace Newsletter.Web.Api;

// Requests. Each binds from a strict JSON body (JsonBody): unknown or repeated fields, wrong types,
// another content type and oversize bodies are a 400 naming the field.

/// <summary>A new active subscriber.</summary>
public sealed record NewSubscriberRequest(
    [property: Description("The address; required")] string? Email,
    [property: Description("A display name, at most 100 characters")] string? Name = null,
    [property: Description("weekly (default) or daily")] string? Cadence = null,
    [property: Description("ko (default), en or both")] string? Language = null,
    [property: Description("IANA time zone of the reader, e.g. Asia/Seoul (default: Newsletter__Schedule__TimeZone)")] string? TimeZone = null,
    [property: Description("Local delivery hour, 0-23 (default: Newsletter__Schedule__DeliveryHour)")] string? Hour = null,
    [property: Description("Weekday of a weekly reader: monday ... sunday (default: Newsletter__Schedule__WeeklyDay)")] string? Weekday = null)
    : IBindableFromHttpContext<NewSubscriberRequest>
{
    public static ValueTask<NewSubscriberRequest?> BindAsync(HttpContext context, ParameterInfo parameter) =>
        JsonBody.BindAsync(context, ["email", "name", "cadence", "language", "timeZone", "hour", "weekday"], f => new NewSubscriberRequest(
            f.Text("email"), f.Text("name"), f.Text("cadence"), f.Text("language"), f.Text("timeZone"), f.Text("hour"), f.Text("weekday")));

    [System.Text.Json.Serialization.JsonIgnore]
    public DeliveryTime Time => DeliveryTime.Parse(TimeZone, Hour, Weekday, "timeZone", "hour", "weekday");
}

/// <summary>Changes to a subscriber; absent fields stay as they are (timeZone, hour and weekday set to null go back to the default).</summary>
public sealed record SubscriberChangeRequest(
    [property: Description("weekly or daily")] string? Cadence = null,
    [property: Description("ko, en or both")] string? Language = null,
    [property: Description("pending, active, unsubscribed, bounced or complained")] string? Status = null,
    [property: Description("IANA time zone; null: the default")] string? TimeZone = null,
    [property: Description("Local delivery hour 0-23; null: the default")] string? Hour = null,
    [property: Description("monday ... sunday; null: the default")] string? Weekday = null) : IBindableFromHttpContext<SubscriberChangeRequest>
{
    /// <summary>Which of timeZone, hour and weekday the body named (a null among them means: back to the default).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public (bool Zone, bool Hour, bool Weekday) Named { get; init; }

    public static ValueTask<SubscriberChangeRequest?> BindAsync(HttpContext context, ParameterInfo parameter) =>
        JsonBody.BindAsync(context, ["cadence", "language", "status", "timeZone", "hour", "weekday"], f => new SubscriberChangeRequest(
            f.Text("cadence"), f.Text("language"), f.Text("status"), f.Text("timeZone"), f.Text("hour"), f.Text("weekday"))
        { Named = (f.Has("timeZone"), f.Has("hour"), f.Has("weekday")) });
}

/// <summary>A digest run for a cadence, or a broadcast of one issue: exactly one of the two.</summary>
public sealed record StartSendRequest(
    [property: Description("daily or weekly: the digest run of the current period")] string? Cadence = null,
    [property: Description("The slug of a published issue to send to every active subscriber")] string? Issue = null) : IBindableFromHttpContext<StartSendRequest>
{
    public static ValueTask<StartSendRequest?> BindAsync(HttpContext context, ParameterInfo parameter) =>
        JsonBody.BindAsync(context, ["cadence", "issue"], f => new StartSendRequest(f.Text("cadence"), f.Text("issue")));
}

/// <summary>Which of a run's deliveries to queue again.</summary>
public sealed record ResendRequest(
    [property: Description("Queue the failed deliveries again")] bool? Failed = null,
    [property: Description("Queue the uncertain deliveries (the server may have them) again")] bool? Uncertain = null) : IBindableFromHttpContext<ResendRequest>
{
    public static ValueTask<ResendRequest?> BindAsync(HttpContext context, ParameterInfo parameter) =>
        JsonBody.BindAsync(context, ["failed", "uncertain"], f => new ResendRequest(f.Flag("failed"), f.Flag("uncertain")));
}

/// <summary>
/// An issue in the import format (see the README). The body is read by the import parser itself,
/// which names the JSON path of any field that breaks a rule.
/// </summary>
public sealed record IssueImportRequest(
    [property: Description("1-100 of a-z, 0-9 and '-'")] string Slug,
    LocalizedText Title,
    IReadOnlyList<IssueItem> Items,
    LocalizedText? Intro = null,
    [property: Description("The week or day the issue covers")] IssuePeriod? Period = null) : IBindableFromHttpContext<IssueImportRequest>
{
    /// <summary>The parsed document (not serialised).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public IssueDocument Document { get; private init; } = null!;

    public static async ValueTask<IssueImportRequest?> BindAsync(HttpContext context, ParameterInfo parameter)
    {
        var document = IssueDocument.Parse(await JsonBody.ReadTextAsync(context.Request, context.RequestAborted));
        return new IssueImportRequest(document.Slug, document.Title, document.Items, document.Intro,
            document.PeriodFrom is { } from && document.PeriodTo is { } to ? new IssuePeriod(from, to) : null) { Document = document };
    }
}

public sealed record IssuePeriod(DateOnly From, DateOnly To);

// Responses.

/// <summary>An issue in a list.</summary>
public sealed record IssueSummary(
    string Slug,
    [property: Description("draft or published")] string Status,
    LocalizedText Title,
    DateTime? PublishedAt,
    [property: Description("How many papers it holds")] int Items)
{
    public static IssueSummary Of(Issue i) => new(i.Slug, StatusName(i), new LocalizedText(i.Title.Ko, i.Title.En), i.PublishedAt, i.Items.Count);

    internal static string StatusName(Issue i) => i.Status == IssueStatus.Published ? "published" : "draft";
}

/// <summary>An issue with its items.</summary>
public sealed record IssueDetail(
    string Slug,
    [property: Description("draft or published")] string Status,
    LocalizedText Title,
    LocalizedText? Intro,
    DateOnly? PeriodFrom,
    DateOnly? PeriodTo,
    DateTime? PublishedAt,
    DateTime CreatedAt,
    IReadOnlyList<IssueItem> Items)
{
    public static IssueDetail Of(Issue i) => new(i.Slug, IssueSummary.StatusName(i), i.Title, i.Intro, i.PeriodFrom, i.PeriodTo, i.PublishedAt, i.CreatedAt, i.Items);
}

/// <summary>A subscriber as the API shows one.</summary>
public sealed record SubscriberResponse(
    string Email,
    string? Name,
    [property: Description("weekly or daily")] string Cadence,
    [property: Description("ko, en or both")] string Language,
    [property: Description("pending, active, unsubscribed, bounced or complained")] string Status,
    DateTime CreatedAt,
    DateTime? ConfirmedAt,
    DateTime? UnsubscribedAt,
    [property: Description("The reader's IANA time zone; null: the default")] string? TimeZone,
    [property: Description("The reader's local delivery hour; null: the default")] int? Hour,
    [property: Description("A weekly reader's weekday; null: the default")] string? Weekday)
{
    public static SubscriberResponse Of(Subscriber s) =>
        new(s.Email, s.Name, Wire.Name(s.Cadence), Wire.Name(s.Language), Wire.Name(s.Status), s.CreatedAt, s.ConfirmedAt, s.UnsubscribedAt,
            s.TimeZone, s.DeliveryHour, s.WeeklyDay is { } d ? DeliveryTime.WeekdayName(d) : null);
}

/// <summary>One change of a subscription.</summary>
public sealed record HistoryEntry(
    DateTime At,
    [property: Description("subscribed, confirmed, cadence_changed, language_changed, name_changed, unsubscribed, ...")] string Event,
    [property: Description("Where the change came from: one-click, page, preferences, admin or bounce")] string Source,
    string? Detail,
    string? ClientAddress,
    string? UserAgent)
{
    public static HistoryEntry Of(SubscriptionEvent e) =>
        new(DateTime.SpecifyKind(e.At, DateTimeKind.Utc), e.Event, e.Source, e.Detail, e.ClientAddress, e.UserAgent);
}

/// <summary>A run with its counts by state and its progress.</summary>
public sealed record RunReport(
    long Id,
    [property: Description("daily, weekly or broadcast")] string Kind,
    [property: Description("sending, paused, done or cancelled")] string Status,
    string? Issue,
    DateTime? Period,
    string? PauseReason,
    [property: Description("Deliveries, and readers whose delivery time has come and whose deliveries are still being written")] int Total,
    [property: Description("Waiting to be sent, including readers whose delivery time has come and whose deliveries are still being written")] int Queued,
    int Sent, int Retrying, int Failed, int Uncertain, int Cancelled, int Skipped,
    DateTime StartedAt,
    DateTime? FinishedAt,
    [property: Description("Over the last minute")] double MessagesPerSecond,
    int Remaining,
    int? EtaSeconds,
    [property: Description("Readers of a scheduled run whose local delivery time is still to come (they get the digest then, if an issue is waiting)")] long ScheduledLater,
    [property: Description("The same readers per hour (UTC) in which their time falls, earliest first")] IReadOnlyList<LaterHour> ScheduledLaterByHour)
{
    public static RunReport Of(RunSummary run, RunProgress progress, IReadOnlyList<(DateTimeOffset Hour, long Readers)> later) => new(
        run.Id, run.Kind, run.Status, run.Issue, run.Period, run.PauseReason, run.Total, run.Queued, run.Sent, run.Retrying, run.Failed,
        run.Uncertain, run.Cancelled, run.Skipped, run.StartedAt, run.FinishedAt, progress.MessagesPerSecond, progress.Remaining, progress.EtaSeconds,
        later.Sum(h => h.Readers), later.Select(h => new LaterHour(h.Hour.UtcDateTime, h.Readers)).ToList());
}

/// <summary>Readers whose delivery time falls in one hour.</summary>
public sealed record LaterHour([property: Description("The start of the hour, UTC")] DateTime Hour, long Readers);

/// <summary>What a resend queued.</summary>
public sealed record ResendResponse(RunSummary Run, [property: Description("Deliveries queued again")] int Requeued);

/// <summary>A keyset page: pass <c>next</c> as <c>?after=</c> for the page after; null after the last.</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, string? Next)
{
    public static Page<T> Of(IReadOnlyList<T> rows, int limit, Func<T, long> key) =>
        new(rows, rows.Count == limit ? key(rows[^1]).ToString(System.Globalization.CultureInfo.InvariantCulture) : null);
}

/// <summary>
/// Endpoint metadata: the request body a route reads itself, for the OpenAPI document only. (The
/// framework's accepts metadata would also refuse other content types with a bare 415 before the
/// route could say which field is wrong.)
/// </summary>
public sealed record RequestBodyDescription(Type Type, string ContentType);

public static class RequestBodyDescriptions
{
    public static RouteHandlerBuilder Describes<T>(this RouteHandlerBuilder route, string contentType) =>
        route.WithMetadata(new RequestBodyDescription(typeof(T), contentType));
}
