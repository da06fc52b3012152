using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Validation;
using static Newsletter.Web.Subscribers.SubscriberPages;

namespace Newsletter.Web.Subscribers;

/// <summary>The public archive: published issues in the reader's language, one page per issue, and the Atom feed.</summary>
internal static class ArchivePages
{
    public static void MapArchivePages(this RouteGroupBuilder pages)
    {
        pages.MapGet("/issues", Archive);
        pages.MapGet("/issues/{slug}", IssueView);
        pages.MapGet("/feed.xml", Feed);
    }

    private static async Task<IResult> Archive(HttpContext http, IssueStore issues, CancellationToken ct)
    {
        var s = PageLanguage.Of(http, null);
        var language = PageLanguage.Reading(s);
        var list = (await issues.ListPublishedAsync(200, ct))
            .Select(issue => (issue.Slug, issue.Title.For(language), issue.PublishedAt?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)))
            .ToList();
        return Page(http, "web/Issues", new ArchivePage
        {
            S = s, Title = s.ArchiveTitle, NewsletterName = Name(http), Issues = list, Lang = s.Lang, OtherLanguageUrl = $"/issues?lang={PageLanguage.Other(s)}",
        });
    }

    private static async Task<IResult> IssueView(HttpContext http, string slug, string? lang, IssueStore issues, IOptions<ArchiveOptions> archive,
        Newsletter.Tracking.ClickReports clicks, CancellationToken ct)
    {
        var s = PageLanguage.Of(http, null);
        if (await issues.GetAsync(slug, ct) is not { Status: IssueStatus.Published } issue)
            throw new NotFoundException("slug", $"no published issue is called '{TextRules.Shorten(slug)}'");
        var language = lang == "both" ? Language.Both : PageLanguage.Reading(s);
        return Page(http, "web/Issue", new IssuePage
        {
            S = s, Title = issue.Title.For(language), NewsletterName = Name(http), Issue = issue, Language = language,
            Period = DigestRenderer.FormatPeriod(issue), OtherLanguageUrl = $"/issues/{Uri.EscapeDataString(slug)}?lang={PageLanguage.Other(s)}",
            MostRead = archive.Value.ShowMostRead ? await clicks.MostReadAsync(issue.Id, 3, ct) : [],
        });
    }

    private static async Task<IResult> Feed(IssueStore issues, IOptions<NewsletterOptions> options, CancellationToken ct)
    {
        var feed = AtomFeed.Write(options.Value, await issues.ListPublishedAsync(50, ct));
        return TypedResults.Bytes(feed, "application/atom+xml; charset=utf-8");
    }
}
