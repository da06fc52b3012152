using Newsletter.Digests;
using Newsletter.Tests.Infrastructure;
using Newsletter.Tracking;
using Newsletter.Web;

namespace Newsletter.Tests.Tracking;

/// <summary>The dashboard's issue page as the service renders it, in both tracking modes.</summary>
public sealed class IssueClicksPageTests
{
    private static readonly TemplateEngine Engine = new(Microsoft.Extensions.Options.Options.Create(TestMail.Options()), [NewsletterApp.PageModels]);

    private static IssueClicks Report(IReadOnlyList<ReaderClick>? readers)
    {
        Dictionary<string, long> By(params long[] v) => ClickReports.Languages.Zip(v).ToDictionary(p => p.First, p => p.Second);
        Dictionary<string, long> ByCadence(params long[] v) => ClickReports.Cadences.Zip(v).ToDictionary(p => p.First, p => p.Second);
        var papers = new List<PaperClicks>
        {
            new(1, "Phi-3 <Technical> Report", 1, By(1, 0, 0), ByCadence(1, 0, 0), [new LinkClicks(0, "paper", "https://arxiv.org/abs/1", 1, By(1, 0, 0), ByCadence(1, 0, 0))]),
            new(2, "Llama 3", 3, By(1, 2, 0), ByCadence(2, 1, 0), [new LinkClicks(0, "paper", "https://arxiv.org/abs/2", 3, By(1, 2, 0), ByCadence(2, 1, 0))]),
        };
        return new IssueClicks("top-ml", "Top ML Papers", readers is null ? "aggregate" : "per-subscriber", 40, 4, 0.1,
            [new ClickGroup("ko", 20, 2), new ClickGroup("en", 20, 2), new ClickGroup("both", 0, 0)],
            [new ClickGroup("weekly", 30, 3), new ClickGroup("daily", 10, 1), new ClickGroup("broadcast", 0, 0)],
            papers, new ClickFiltering(50, 6, new Dictionary<string, long> { ["burst"] = 40, ["head"] = 4 }), readers);
    }

    private static Task<string> RenderAsync(IssueClicks report) => Engine.RenderAsync("admin/Issue", new AdminIssueClicksPage
    {
        Title = "Issue top-ml", Clicks = report, Chart = SvgChart.Ranked(report.Papers, "Readers per paper"),
    });

    [Fact]
    public async Task The_page_ranks_the_papers_and_shows_who_clicked_only_in_per_subscriber_mode()
    {
        var aggregate = await RenderAsync(Report(null));
        Assert.Contains("4</b> readers opened at least one paper of <b>40</b> delivered (10.0 % click-to-delivered)", aggregate);
        Assert.Contains("kept 6 of 50 requests as human; removed: burst 40, head 4", aggregate);
        Assert.True(aggregate.IndexOf("2. Llama 3", StringComparison.Ordinal) < aggregate.IndexOf("1. Phi-3", StringComparison.Ordinal)); // most read first
        Assert.Contains("Phi-3 &lt;Technical&gt; Report", aggregate); // titles are encoded, in the table and the chart
        Assert.DoesNotContain("<Technical>", aggregate);
        Assert.DoesNotContain("Who clicked", aggregate);

        var perSubscriber = await RenderAsync(Report([new ReaderClick("minji@example.org", 2, 0, new DateTime(2026, 12, 7, 9, 30, 0, DateTimeKind.Utc))]));
        Assert.Contains("Who clicked", perSubscriber);
        Assert.Contains("<td>minji@example.org</td><td class=\"num\">2</td><td class=\"num\">1</td><td>2026-12-07 09:30:00</td>", perSubscriber);
    }
}
