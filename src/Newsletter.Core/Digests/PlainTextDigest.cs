using System.Text;

namespace Newsletter.Digests;

/// <summary>
/// The text/plain part, written from the same <see cref="DigestView"/> as the HTML so both say the
/// same things; every link is written out as its URL.
/// </summary>
internal static class PlainTextDigest
{
    public static string Write(DigestView view)
    {
        var sb = new StringBuilder(16 * 1024);
        sb.Append(view.Preheader).Append("\n\n");
        foreach (var (lang, _) in view.Footers)
            sb.Append(view.Personal.Greeting(lang)).Append('\n');
        sb.Append('\n');

        foreach (var issue in view.Issues)
        {
            foreach (var (_, title) in issue.Title)
                sb.Append(title).Append('\n');
            sb.Append(new string('=', 40)).Append('\n');
            if (issue.Period is { } period) sb.Append(period).Append('\n');
            sb.Append(view.Strings.ViewInBrowser).Append(": ").Append(issue.WebUrl).Append("\n\n");
            foreach (var (_, intro) in issue.Intro)
                sb.Append(intro).Append("\n\n");

            foreach (var item in issue.Items)
            {
                sb.Append(item.Number).Append(". ");
                sb.AppendJoin("\n   ", item.Title.Select(t => t.Text)).Append("\n\n");
                foreach (var (_, summary) in item.Summary)
                    sb.Append(Indent(summary)).Append("\n\n");
                foreach (var (lang, text) in item.Abstract)
                    sb.Append("   ").Append(DigestStrings.For(lang).Abstract).Append(":\n").Append(Indent(text)).Append("\n\n");
                for (var l = 0; l < item.Links.Count; l++)
                    sb.Append("   ").Append(view.Strings.LinkLabel(item.Links[l].Label)).Append(": ").Append(item.Hrefs[l]).Append('\n');
                sb.Append('\n');
            }
        }

        sb.Append("--\n");
        for (var f = 0; f < view.Footers.Count; f++)
        {
            var strings = view.Footers[f].Strings;
            sb.Append(string.Format(System.Globalization.CultureInfo.InvariantCulture, strings.WhyYouGetThis, view.NewsletterName)).Append('\n');
            sb.Append(strings.WeeklyOrDaily).Append('\n');
            if (view.ClicksNotice.Count > f) sb.Append(view.ClicksNotice[f]).Append('\n');
            sb.Append(strings.Preferences).Append(": ").Append(view.Personal.Preferences).Append('\n');
            sb.Append(strings.Unsubscribe).Append(": ").Append(view.Personal.Unsubscribe).Append("\n\n");
        }
        return sb.ToString();
    }

    private static string Indent(string text) => "   " + text.Replace("\n", "\n   ");
}
