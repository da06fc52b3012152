using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Tracking;
using Newsletter.Validation;

namespace Newsletter.Web.Subscribers;

/// <summary>
/// <c>GET</c> and <c>HEAD /r/{token}</c>: the tracked links of the digests. A valid token is
/// answered with a 302 to its link's URL (never anywhere else: the URL is read from the issue at the
/// token's place), whoever asks; the request is queued for counting with the filter's first verdict
/// (<see cref="ClickFilter"/>). Anything else (forged, truncated, another link's kind of token, an
/// erased reader's, a link a correction removed) is the 404 page, and nothing is counted. One
/// address over <c>Newsletter__Tracking__RequestsPerMinute</c> gets 429, the others go on.
/// </summary>
internal static class ClickRedirects
{
    public const string RateLimit = "click-redirects";

    public static void MapClickRedirects(this RouteGroupBuilder pages) =>
        pages.MapMethods("/r/{token}", [HttpMethods.Get, HttpMethods.Head], RedirectAsync).RequireRateLimiting(RateLimit);

    private static async Task<IResult> RedirectAsync(HttpContext http, string token, ClickTokens tokens, TrackedLinkTargets targets,
        ClickRecorder recorder, IOptions<TrackingOptions> options, TimeProvider clock, CancellationToken ct)
    {
        if (!tokens.TryRead(token, out var place) || await targets.FindAsync(place, ct) is not { } url)
            throw new NotFoundException(PersonalLink.Field, "this link is not valid");
        if (options.Value.Mode != ClickTrackingMode.Off)
        {
            var now = clock.GetUtcNow();
            var agent = http.Request.Headers.UserAgent.ToString();
            recorder.Record(new ClickRequest(place, now, http.Request.Method, agent, ClickFilter.Immediate(http.Request.Method, agent, place.SentAt, now)));
        }
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers["Referrer-Policy"] = "no-referrer";
        return Results.Redirect(url);
    }
}

/// <summary>Runs the <see cref="ClickRecorder"/>'s batches for the life of the service.</summary>
internal sealed class ClickRecording(ClickRecorder recorder) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => recorder.RunAsync(stoppingToken);
}
