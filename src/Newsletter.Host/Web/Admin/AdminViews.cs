using System.Globalization;
using System.Text;
using Newsletter.Delivery;
using Newsletter.Issues;
using Newsletter.Subscribers;

namespace Newsletter.Web;

/// <summary>What every dashboard page shares.</summary>
public abstract class AdminView
{
    public required string Title { get; init; }

    public FormToken? Token { get; set; }

    public string? Notice { get; init; }

    public string? Error { get; init; }

    /// <summary>Seconds after which the page reloads itself (a run in progress), or null.</summary>
    public int? RefreshSeconds { get; init; }

    public bool SignedIn { get; init; } = true;
}

public sealed class AdminLoginPage : AdminView;

public sealed class AdminMessagePage : AdminView
{
    public IReadOnlyList<string> Paragraphs { get; init; } = [];
}

public sealed class AdminOverviewPage : AdminView
{
    public required IReadOnlyList<(string Status, string Cadence, long Count)> Counts { get; init; }

    public required IReadOnlyList<RunSummary> Runs { get; init; }

    public required string SentChart { get; init; }

    public required string SubscribersChart { get; init; }

    public required string ComplaintsChart { get; init; }

    public long Count(string status, string? cadence = null) =>
        Counts.Where(c => c.Status == status && (cadence is null || c.Cadence == cadence)).Sum(c => c.Count);
}

public sealed class AdminIssuesPage : AdminView
{
    public required IReadOnlyList<Issue> Issues { get; init; }

    public string Json { get; init; } = "";
}

public sealed class AdminRunPage : AdminView
{
    public required RunSummary Run { get; init; }

    public required RunProgress Progress { get; init; }

    public required IReadOnlyList<DeliveryRow> Failed { get; init; }

    public required IReadOnlyList<DeliveryRow> Uncertain { get; init; }

    /// <summary>Bounces and complaints that came back for this run's messages.</summary>
    public required Newsletter.Bounces.RunBounces Bounces { get; init; }

    public int Percent => Run.Total == 0 ? 100 : (int)((Run.Total - Progress.Remaining) * 100L / Run.Total);
}

public sealed class AdminSubscribersPage : AdminView
{
    public required IReadOnlyList<Subscriber> Subscribers { get; init; }

    public required IReadOnlyList<(string Status, string Cadence, long Count)> Counts { get; init; }

    public string? Query { get; init; }

    public string? Status { get; init; }

    public string? Cadence { get; init; }

    public string? NextUrl { get; init; }
}

/// <summary>Bar charts as inline SVG, drawn on the server: no script, no chart library.</summary>
public static class SvgChart
{
    /// <summary>
    /// Complaint rate per run as bars, with a dashed line at <paramref name="limit"/> (Gmail's 0.3 %):
    /// a bar above it is drawn as over.
    /// </summary>
    public static string Rates(IReadOnlyList<Newsletter.Bounces.RunBounces> runs, string title, double limit)
    {
        const int width = 600, height = 180, left = 44, bottom = 24, top = 12;
        var max = Math.Max(limit * 2, runs.Count == 0 ? 0 : runs.Max(r => r.Rate(r.Complaint)));
        var step = (width - left) / (double)Math.Max(1, runs.Count);
        var plot = height - bottom - top;
        var svg = new StringBuilder();
        var id = "chart-" + string.Concat(title.Where(char.IsLetterOrDigit)).ToLowerInvariant();
        var over = runs.Count(r => r.Rate(r.Complaint) > limit);
        svg.Append(CultureInfo.InvariantCulture, $"<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\">");
        svg.Append(CultureInfo.InvariantCulture, $"<title id=\"{id}\">{Escape(title)}: {over} of {runs.Count} runs above {limit:P1}</title>");
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" y1=\"{height - bottom}\" x2=\"{width}\" y2=\"{height - bottom}\" class=\"axis\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 6}\" y=\"{top + 10}\" text-anchor=\"end\" class=\"label\">{max:P1}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 6}\" y=\"{height - bottom}\" text-anchor=\"end\" class=\"label\">0</text>");
        for (var i = 0; i < runs.Count; i++)
        {
            var rate = runs[i].Rate(runs[i].Complaint);
            var h = rate * plot / max;
            var x = left + i * step + 1;
            svg.Append(CultureInfo.InvariantCulture,
                $"<rect x=\"{x:0.#}\" y=\"{height - bottom - h:0.#}\" width=\"{Math.Max(1, step - 2):0.#}\" height=\"{h:0.#}\" class=\"bar{(rate > limit ? " over" : "")}\"><title>Run {runs[i].RunId}: {runs[i].Complaint:N0} complaints of {runs[i].Sent:N0} sent ({rate:P2})</title></rect>");
        }
        var y = height - bottom - limit * plot / max;
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" y1=\"{y:0.#}\" x2=\"{width}\" y2=\"{y:0.#}\" class=\"limit\" stroke-dasharray=\"6 4\"><title>Gmail's limit: {limit:P1}</title></line>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{width}\" y=\"{y - 4:0.#}\" text-anchor=\"end\" class=\"label\">{limit:P1}</text>");
        svg.Append("</svg>");
        return svg.ToString();
    }

    public static string Bars(IReadOnlyList<DayCount> series, string title, string unit)
    {
        const int width = 600, height = 180, left = 44, bottom = 24, top = 12;
        var max = Math.Max(1, series.Count == 0 ? 1 : series.Max(p => p.Count));
        var step = (width - left) / (double)Math.Max(1, series.Count);
        var plot = height - bottom - top;
        var svg = new StringBuilder();
        var id = "chart-" + string.Concat(title.Where(char.IsLetterOrDigit)).ToLowerInvariant();
        svg.Append(CultureInfo.InvariantCulture, $"<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\">");
        svg.Append(CultureInfo.InvariantCulture, $"<title id=\"{id}\">{Escape(title)}: {(series.Count == 0 ? 0 : series[^1].Count)} {Escape(unit)} on the last day, at most {max}</title>");
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" y1=\"{height - bottom}\" x2=\"{width}\" y2=\"{height - bottom}\" class=\"axis\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 6}\" y=\"{top + 10}\" text-anchor=\"end\" class=\"label\">{max:N0}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 6}\" y=\"{height - bottom}\" text-anchor=\"end\" class=\"label\">0</text>");
        for (var i = 0; i < series.Count; i++)
        {
            var h = series[i].Count * plot / (double)max;
            var x = left + i * step + 1;
            svg.Append(CultureInfo.InvariantCulture,
                $"<rect x=\"{x:0.#}\" y=\"{height - bottom - h:0.#}\" width=\"{Math.Max(1, step - 2):0.#}\" height=\"{h:0.#}\" class=\"bar\"><title>{series[i].Day:yyyy-MM-dd}: {series[i].Count:N0}</title></rect>");
        }
        if (series.Count > 0)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left}\" y=\"{height - 6}\" class=\"label\">{series[0].Day:MM-dd}</text>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{width}\" y=\"{height - 6}\" text-anchor=\"end\" class=\"label\">{series[^1].Day:MM-dd}</text>");
        }
        svg.Append("</svg>");
        return svg.ToString();
    }

    private static string Escape(string text) => System.Net.WebUtility.HtmlEncode(text);
}
