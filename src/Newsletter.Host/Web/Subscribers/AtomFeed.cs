using System.Xml;
using Newsletter.Configuration;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Validation;

namespace Newsletter.Web.Subscribers;

/// <summary>The archive as an Atom feed (RFC 4287): the newest published issues, each with its intro and paper titles.</summary>
internal static class AtomFeed
{
    private const string Atom = "http://www.w3.org/2005/Atom";

    /// <summary>
    /// The whole feed, written before the first byte goes out: a feed is either complete or an
    /// error, never a 200 cut off mid-element. Every text goes through XmlSafe, so text stored
    /// before the current rules cannot break it either.
    /// </summary>
    public static byte[] Write(NewsletterOptions options, IReadOnlyList<Issue> published)
    {
        var baseUrl = options.PublicUrl.TrimEnd('/');
        var name = TextRules.XmlSafe(DigestRenderer.NewsletterName(options));
        using var buffer = new MemoryStream();
        using (var writer = XmlWriter.Create(buffer, new XmlWriterSettings { Encoding = new System.Text.UTF8Encoding(false), Indent = true }))
        {
            writer.WriteStartDocument();
            writer.WriteStartElement(null, "feed", Atom);
            writer.WriteElementString("title", Atom, name);
            writer.WriteElementString("id", Atom, $"{baseUrl}/feed.xml");
            WriteLink(writer, "self", $"{baseUrl}/feed.xml");
            WriteLink(writer, "alternate", $"{baseUrl}/issues");
            var updated = published.Count > 0 ? published.Max(i => i.PublishedAt ?? i.CreatedAt) : DateTime.UnixEpoch;
            writer.WriteElementString("updated", Atom, Timestamp(updated));
            foreach (var issue in published)
            {
                var url = $"{baseUrl}/issues/{Uri.EscapeDataString(issue.Slug)}";
                writer.WriteStartElement("entry", Atom);
                writer.WriteElementString("title", Atom, TextRules.XmlSafe(issue.Title.For(Language.Both)));
                writer.WriteElementString("id", Atom, url);
                WriteLink(writer, "alternate", url);
                var at = Timestamp(issue.PublishedAt ?? issue.CreatedAt);
                writer.WriteElementString("published", Atom, at);
                writer.WriteElementString("updated", Atom, at);
                writer.WriteStartElement("author", Atom);
                writer.WriteElementString("name", Atom, name);
                writer.WriteEndElement();
                var summary = string.Join("\n\n", new[] { issue.Intro?.Ko, issue.Intro?.En }.Where(t => t is not null)
                    .Concat(issue.Items.Select((item, i) => $"{i + 1}. {item.Title.For(Language.Both)}")));
                writer.WriteElementString("summary", Atom, TextRules.XmlSafe(summary));
                writer.WriteEndElement();
            }
            writer.WriteEndElement();
            writer.WriteEndDocument();
        }
        return buffer.ToArray();
    }

    private static string Timestamp(DateTime at) => XmlConvert.ToString(DateTime.SpecifyKind(at, DateTimeKind.Utc), XmlDateTimeSerializationMode.Utc);

    private static void WriteLink(XmlWriter writer, string rel, string href)
    {
        writer.WriteStartElement("link", Atom);
        writer.WriteAttributeString("rel", rel);
        writer.WriteAttributeString("href", href);
        writer.WriteEndElement();
    }
}
