using System.Text;
using System.Text.RegularExpressions;
using MimeKit;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Digests;

public sealed class MessageTests
{
    private static string RawHeaders(MimeMessage message)
    {
        var raw = Encoding.ASCII.GetString(TestMail.Bytes(message));
        return raw[..raw.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
    }

    private static string RawHeader(string headers, string name) =>
        Regex.Match(headers, $@"(?im)^{Regex.Escape(name)}:(.*(?:\r\n[ \t].*)*)").Groups[1].Value;

    [Fact]
    public async Task Headers_meet_the_bulk_sender_rules()
    {
        var message = await TestMail.MessageAsync(Language.Both);
        var headers = RawHeaders(message);

        // One-click unsubscribe: exactly one https URI, written raw, never RFC 2047-encoded.
        var listUnsubscribe = RawHeader(headers, "List-Unsubscribe");
        Assert.DoesNotContain("=?", listUnsubscribe);
        var unfolded = Regex.Replace(listUnsubscribe, @"\r\n[ \t]", " ").Trim();
        Assert.Matches(@"^<https://news\.example\.org/unsubscribe/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+>$", unfolded);
        Assert.Single(Regex.Matches(unfolded, "https://"));
        Assert.Equal("List-Unsubscribe=One-Click", message.Headers["List-Unsubscribe-Post"]);
        Assert.Equal("\"PyTorchKR\" <news.news.example.org>", message.Headers[HeaderId.ListId]);
        Assert.Equal("auto-generated", message.Headers["Auto-Submitted"]);
        Assert.False(message.Headers.Contains(HeaderId.ReturnPath));

        // Single-instance headers appear once; From holds one address.
        foreach (var name in new[] { "From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version" })
            Assert.Single(Regex.Matches(headers, $"(?im)^{Regex.Escape(name)}:"));
        Assert.Equal("news@news.example.org", message.From.Mailboxes.Single().Address);
        Assert.Equal("editors@news.example.org", message.ReplyTo.Mailboxes.Single().Address);

        // Message-ID on the sending domain, not the host name.
        Assert.Matches(@"^[0-9a-f]{32}@news\.example\.org$", message.MessageId);
        Assert.True(Math.Abs((message.Date - DateTimeOffset.UtcNow).TotalMinutes) < 1);

        // Headers are plain ASCII, lines within RFC 5322's limit, Korean in encoded-words of at most 75 characters.
        Assert.All(Encoding.UTF8.GetBytes(headers), b => Assert.True(b < 128));
        Assert.All(headers.Split("\r\n"), line => Assert.True(line.Length <= 998));
        Assert.All(Regex.Matches(headers, @"=\?[^?]+\?[bBqQ]\?[^?]*\?=").Select(m => m.Value), w => Assert.True(w.Length <= 75, w));
    }

    [Fact]
    public async Task A_korean_subject_and_display_name_round_trip_through_the_wire_format()
    {
        var message = await TestMail.MessageAsync(Language.Both);

        var parsed = MimeMessage.Load(new MemoryStream(TestMail.Bytes(message)));

        Assert.Equal("[2024/04/22 ~ 04/28] 이번 주의 주요 ML 논문 / Top ML Papers of the Week (April 22 – 28, 2024)", parsed.Subject);
        Assert.Contains("=?utf-8?b?", RawHeaders(message), StringComparison.OrdinalIgnoreCase);
        Assert.Equal("PyTorchKR 뉴스레터", parsed.From.Mailboxes.Single().Name);
        Assert.Equal("김민지", parsed.To.Mailboxes.Single().Name);
        Assert.Equal(message.MessageId, parsed.MessageId);
        Assert.Equal(message.HtmlBody, parsed.HtmlBody);
        Assert.Equal(message.TextBody, parsed.TextBody);
    }

    [Fact]
    public async Task The_body_is_multipart_alternative_text_then_html_in_utf8_with_seven_bit_encodings()
    {
        var message = await TestMail.MessageAsync(Language.Ko);

        var alternative = Assert.IsType<MultipartAlternative>(message.Body);
        Assert.Equal(2, alternative.Count);
        var text = Assert.IsType<TextPart>(alternative[0]);
        var html = Assert.IsType<TextPart>(alternative[^1]);
        Assert.Equal("text/plain", text.ContentType.MimeType);
        Assert.Equal("text/html", html.ContentType.MimeType);
        Assert.Equal("utf-8", text.ContentType.Charset);
        Assert.Equal("utf-8", html.ContentType.Charset);
        // Korean-heavy parts go base64; nothing is sent as raw 8-bit.
        Assert.Equal(ContentEncoding.Base64, text.ContentTransferEncoding);
        Assert.All(TestMail.Bytes(message), b => Assert.True(b < 128));
    }

    [Fact]
    public async Task The_message_id_is_the_same_for_the_same_delivery_and_different_for_another()
    {
        var digest = await TestMail.Renderer().RenderAsync([TestMail.SampleIssue()], Language.En);
        var builder = TestMail.Builder();
        var subscriber = TestMail.Subscriber(Language.En);

        var first = builder.Build(digest, subscriber, "run/7/subscriber/42");
        var again = builder.Build(digest, subscriber, "run/7/subscriber/42");
        var other = builder.Build(digest, subscriber, "run/8/subscriber/42");

        Assert.Equal(first.MessageId, again.MessageId);
        Assert.NotEqual(first.MessageId, other.MessageId);
    }

    [Theory]
    [InlineData(Language.Ko, "구독 해지")]
    [InlineData(Language.En, "Unsubscribe")]
    [InlineData(Language.Both, "구독 해지")]
    public async Task A_visible_unsubscribe_link_in_the_readers_language_points_where_the_header_does(Language language, string label)
    {
        var message = await TestMail.MessageAsync(language);
        var url = message.Headers[HeaderId.ListUnsubscribe]!.Trim().Trim('<', '>');

        Assert.Contains($"<a href=\"{url}\"", message.HtmlBody);
        Assert.Matches($@"<a href=""{Regex.Escape(url)}""[^>]*>{label}</a>", message.HtmlBody);
        Assert.Contains(url, message.TextBody);
        Assert.Contains($"{label}: {url}", message.TextBody);
    }

    [Fact]
    public async Task The_text_part_says_what_the_html_says_with_urls_written_out()
    {
        var message = await TestMail.MessageAsync(Language.Both);
        var issue = TestMail.SampleIssue();

        foreach (var item in issue.Items)
        {
            Assert.Contains(item.Title.Ko!, message.TextBody);
            Assert.Contains(item.Title.En!, message.TextBody);
            Assert.Contains(item.Summary.En!, message.TextBody);
            foreach (var link in item.Links)
            {
                Assert.Contains(link.Url, message.TextBody);
                Assert.Contains($"href=\"{link.Url}\"", message.HtmlBody);
            }
        }
        Assert.Contains("https://news.example.org/issues/top-ml-papers-2024-04-22", message.TextBody);
        // The preheader is a real summary, also at the top of the text.
        Assert.StartsWith("이번 호: Phi-3 기술 보고서", message.TextBody);
    }

    [Fact]
    public async Task The_greeting_uses_the_name_or_a_neutral_hello()
    {
        var named = await TestMail.MessageAsync(Language.En, name: "Alex");
        var anonymous = await TestMail.MessageAsync(Language.En, name: null);

        Assert.Contains("Hello Alex,", named.TextBody);
        Assert.Contains("Hello Alex,", named.HtmlBody);
        Assert.Contains("Hello,", anonymous.TextBody);
        Assert.DoesNotContain("Hello ,", anonymous.HtmlBody);
    }
}
