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

    /// <summary>Readers whose local delivery time comes due in each of the next 24 hours.</summary>
    public required string ForecastChart { get; init; }

    public long Count(string status, string? cadence = null) =>
        Counts.Where(c => c.Status == status && (cadence is null || c.Cadence == cadence)).Sum(c => c.Count);
}

public sealed class AdminIssuesPage : AdminView
{
    public required IReadOnlyList<Issue> Issues { get; init; }

    public string Json { get; init; } = "";
}

public sealed class AdminIssueClicksPage : AdminView
{
    public required Newsletter.Tracking.IssueClicks Clicks { get; init; }

    /// <summary>The papers by unique human clickers, most first, as a bar chart.</summary>
    public required string Chart { get; init; }
}

public sealed class AdminRunPage : AdminView
{
    public required RunSummary Run { get; init; }

    public required RunProgress Progress { get; init; }

    public required IReadOnlyList<DeliveryRow> Failed { get; init; }

    public required IReadOnlyList<DeliveryRow> Uncertain { get; init; }

    /// <summary>Bounces and complaints that came back for this run's messages.</summary>
    public required Newsletter.Bounces.RunBounces Bounces { get; init; }

    /// <summary>Readers of this (scheduled) run whose local delivery time is still to come.</summary>
    /// <summary>Readers of the run whose local delivery time is still to come, per UTC hour.</summary>
    public IReadOnlyList<(DateTimeOffset Hour, long Readers)> Later { get; init; } = [];

    public long ScheduledLater => Later.Sum(h => h.Readers);

    /// <summary>The same as a bar chart, one bar per hour with readers.</summary>
    public string LaterChart => SvgChart.Hours(Later, "Still to come by hour");

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
    private const int Width = 600, Height = 180, Left = 44, Bottom = 24, Top = 12;

    /// <summary>One bar: its height in the chart's unit, the tooltip, and whether it is over the chart's limit.</summary>
    private readonly record struct Bar(double Value, string Tip, bool Over = false);

    /// <summary>
    /// Complaint rate per run as bars, with a dashed line at <paramref name="limit"/> (Gmail's 0.3 %):
    /// a bar above it is drawn as over.
    /// </summary>
    public static string Rates(IReadOnlyList<Newsletter.Bounces.RunBounces> runs, string title, double limit)
    {
        var max = Math.Max(limit * 2, runs.Count == 0 ? 0 : runs.Max(r => r.Rate(r.Complaint)));
        var bars = runs.Select(r => new Bar(r.Rate(r.Complaint),
            string.Create(CultureInfo.InvariantCulture, $"Run {r.RunId}: {r.Complaint:N0} complaints of {r.Sent:N0} sent ({r.Rate(r.Complaint):P2})"), r.Rate(r.Complaint) > limit)).ToList();
        var summary = string.Create(CultureInfo.InvariantCulture, $"{bars.Count(b => b.Over)} of {runs.Count} runs above {limit:P1}");
        return Draw(title, summary, string.Create(CultureInfo.InvariantCulture, $"{max:P1}"), max, bars, axis: null, limit);
    }

    public static string Bars(IReadOnlyList<DayCount> series, string title, string unit)
    {
        var max = Math.Max(1, series.Count == 0 ? 1 : series.Max(p => p.Count));
        var bars = series.Select(p => new Bar(p.Count, string.Create(CultureInfo.InvariantCulture, $"{p.Day:yyyy-MM-dd}: {p.Count:N0}"))).ToList();
        var summary = string.Create(CultureInfo.InvariantCulture, $"{(series.Count == 0 ? 0 : series[^1].Count)} {unit} on the last day, at most {max}");
        var axis = series.Count == 0 ? ((string, string)?)null
            : (series[0].Day.ToString("MM-dd", CultureInfo.InvariantCulture), series[^1].Day.ToString("MM-dd", CultureInfo.InvariantCulture));
        return Draw(title, summary, max.ToString("N0", CultureInfo.InvariantCulture), max, bars, axis, limit: null);
    }

    /// <summary>Readers due in each of the next 24 hours (UTC hours).</summary>
    public static string Hours(IReadOnlyList<(DateTimeOffset Hour, long Readers)> hours, string title)
    {
        var max = Math.Max(1, hours.Count == 0 ? 1 : hours.Max(h => h.Readers));
        var bars = hours.Select(h => new Bar(h.Readers, string.Create(CultureInfo.InvariantCulture, $"{h.Hour:yyyy-MM-dd HH}:00 UTC: {h.Readers:N0} readers"))).ToList();
        var summary = string.Create(CultureInfo.InvariantCulture, $"{hours.Sum(h => h.Readers):N0} readers due, at most {max:N0} in one hour");
        var axis = hours.Count == 0 ? ((string, string)?)null
            : (hours[0].Hour.ToString("HH:00", CultureInfo.InvariantCulture) + " UTC", hours[^1].Hour.ToString("HH:00", CultureInfo.InvariantCulture));
        return Draw(title, summary, max.ToString("N0", CultureInfo.InvariantCulture), max, bars, axis, limit: null);
    }

    /// <summary>
    /// Papers ranked by unique human clickers, one horizontal bar each with its number and title,
    /// most read first.
    /// </summary>
    public static string Ranked(IReadOnlyList<Newsletter.Tracking.PaperClicks> papers, string title)
    {
        const int row = 26, labelWidth = 260;
        var ranked = papers.OrderByDescending(p => p.Clickers).ThenBy(p => p.Number).ToList();
        var max = Math.Max(1, ranked.Count == 0 ? 1 : ranked.Max(p => p.Clickers));
        var height = Top + Math.Max(1, ranked.Count) * row + 8;
        var id = "chart-" + string.Concat(title.Where(char.IsLetterOrDigit)).ToLowerInvariant();
        var summary = ranked.Count == 0 || ranked[0].Clickers == 0 ? "no human clicks yet"
            : string.Create(CultureInfo.InvariantCulture, $"most read: paper {ranked[0].Number} with {ranked[0].Clickers:N0} readers");
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg class=\"chart ranked\" viewBox=\"0 0 {Width} {height}\" role=\"img\" aria-labelledby=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\">");
        svg.Append(CultureInfo.InvariantCulture, $"<title id=\"{id}\">{Escape(title)}: {Escape(summary)}</title>");
        for (var i = 0; i < ranked.Count; i++)
        {
            var p = ranked[i];
            var y = Top + i * row;
            var w = p.Clickers * (Width - labelWidth - 60) / (double)max;
            var label = Fit($"{p.Number}. {p.Title}", 42);
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"0\" y=\"{y + 15}\" class=\"label\"><title>{Escape($"{p.Number}. {p.Title}")}</title>{Escape(label)}</text>");
            svg.Append(CultureInfo.InvariantCulture,
                $"<rect x=\"{labelWidth}\" y=\"{y + 3}\" width=\"{Math.Max(1, w):0.#}\" height=\"{row - 8}\" class=\"bar\"><title>{Escape($"Paper {p.Number}: {p.Clickers:N0} readers")}</title></rect>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{labelWidth + w + 6:0.#}\" y=\"{y + 15}\" class=\"label\">{p.Clickers:N0}</text>");
        }
        svg.Append("</svg>");
        return svg.ToString();
    }

    /// <summary>
    /// <paramref name="text"/> cut to about <paramref name="units"/> widths of a Latin letter (Hangul
    /// and other wide letters count two), with an ellipsis where it was cut.
    /// </summary>
    private static string Fit(string text, int units)
    {
        var used = 0;
        for (var i = 0; i < text.Length; i++)
        {
            used += text[i] >= '\u1100' ? 2 : 1;
            if (used > units) return text[..Math.Max(0, i - 1)].TrimEnd() + "…";
        }
        return text;
    }

    private static string Draw(string title, string summary, string maxLabel, double max, IReadOnlyList<Bar> bars, (string First, string Last)? axis, double? limit)
    {
        var step = (Width - Left) / (double)Math.Max(1, bars.Count);
        var plot = Height - Bottom - Top;
        var svg = new StringBuilder();
        var id = "chart-" + string.Concat(title.Where(char.IsLetterOrDigit)).ToLowerInvariant();
        svg.Append(CultureInfo.InvariantCulture, $"<svg class=\"chart\" viewBox=\"0 0 {Width} {Height}\" role=\"img\" aria-labelledby=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\">");
        svg.Append(CultureInfo.InvariantCulture, $"<title id=\"{id}\">{Escape(title)}: {Escape(summary)}</title>");
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{Height - Bottom}\" x2=\"{Width}\" y2=\"{Height - Bottom}\" class=\"axis\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 6}\" y=\"{Top + 10}\" text-anchor=\"end\" class=\"label\">{maxLabel}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 6}\" y=\"{Height - Bottom}\" text-anchor=\"end\" class=\"label\">0</text>");
        for (var i = 0; i < bars.Count; i++)
        {
            var h = bars[i].Value * plot / max;
            var x = Left + i * step + 1;
            svg.Append(CultureInfo.InvariantCulture,
                $"<rect x=\"{x:0.#}\" y=\"{Height - Bottom - h:0.#}\" width=\"{Math.Max(1, step - 2):0.#}\" height=\"{h:0.#}\" class=\"bar{(bars[i].Over ? " over" : "")}\"><title>{Escape(bars[i].Tip)}</title></rect>");
        }
        if (axis is { } days)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left}\" y=\"{Height - 6}\" class=\"label\">{days.First}</text>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width}\" y=\"{Height - 6}\" text-anchor=\"end\" class=\"label\">{days.Last}</text>");
        }
        if (limit is { } line)
        {
            var y = Height - Bottom - line * plot / max;
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{y:0.#}\" x2=\"{Width}\" y2=\"{y:0.#}\" class=\"limit\" stroke-dasharray=\"6 4\"><title>Gmail's limit: {line:P1}</title></line>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width}\" y=\"{y - 4:0.#}\" text-anchor=\"end\" class=\"label\">{line:P1}</text>");
        }
        svg.Append("</svg>");
        return svg.ToString();
    }

    private static string Escape(string text) => System.Net.WebUtility.HtmlEncode(text);
}
