using System.Text;
using MimeKit;
using MimeKit.Encodings;
using Newsletter.Digests;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Digests;

/// <summary>
/// The digest body is encoded once per digest and only the personal values per message: what a
/// mail client decodes must be exactly the personalised digest, in lines any server accepts.
/// </summary>
public sealed class WireFormatTests
{
    public static TheoryData<Language, string?> Readers => new()
    {
        { Language.Ko, "김민지" },
        { Language.En, "Alex Doe" },
        { Language.Both, null },
        { Language.En, "  =Kim  Minji= \t🦀 " },
        { Language.Ko, new string('가', 90) },
        { Language.En, "a" },
    };

    [Theory]
    [MemberData(nameof(Readers))]
    public async Task A_client_decodes_exactly_the_personalised_digest(Language language, string? name)
    {
        var digest = await TestMail.Renderer().RenderAsync([TestMail.SampleIssue()], language);
        var sent = TestMail.Builder().Build(digest, TestMail.Subscriber(language, name), "wire/1");
        var received = TestMail.Received(sent);
        var links = received.Headers[HeaderId.ListUnsubscribe]!.Trim('<', '>', ' ');
        var preferences = System.Text.RegularExpressions.Regex.Match(received.TextBody ?? "", @"https://\S+/preferences/\S+").Value;
        var expected = digest.Personalize(new Recipient(name, links, preferences));

        Assert.Equal(Lf(expected.Text), Lf(received.TextBody));
        Assert.Equal(Lf(expected.Html), Lf(received.HtmlBody));
        Assert.Equal(digest.TextEncoding, received.BodyParts.OfType<TextPart>().Single(p => p.IsPlain).ContentTransferEncoding);
        Assert.Equal(digest.HtmlEncoding, received.BodyParts.OfType<TextPart>().Single(p => p.IsHtml).ContentTransferEncoding);
    }

    [Theory]
    [MemberData(nameof(Readers))]
    public async Task Every_line_is_seven_bit_at_most_76_characters_and_has_no_trailing_or_repeated_space(Language language, string? name)
    {
        var digest = await TestMail.Renderer().RenderAsync([TestMail.SampleIssue()], language);
        var bytes = TestMail.Bytes(TestMail.Builder().Build(digest, TestMail.Subscriber(language, name), "wire/2"));
        var text = Encoding.ASCII.GetString(bytes);
        var body = text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];

        Assert.All(bytes, b => Assert.True(b < 128));
        Assert.DoesNotContain("\n", body.Replace("\r\n", ""));
        Assert.EndsWith("--\r\n", body);
        foreach (var line in body.Split("\r\n"))
        {
            Assert.True(line.Length <= 76, $"{line.Length} characters: {line}");
            Assert.False(line.EndsWith(' ') || line.EndsWith('\t'), line);
            Assert.DoesNotContain("  ", line);
            Assert.DoesNotContain("\t", line);
        }
        // DKIM's canonicalisations would change nothing: no empty lines at the end either.
        Assert.False(body.EndsWith("\r\n\r\n", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(Language.Ko, false)]
    [InlineData(Language.Both, false)]
    [InlineData(Language.En, true)]
    public async Task The_size_given_to_the_server_is_the_size_written(Language language, bool signed)
    {
        var digest = await TestMail.Renderer().RenderAsync([TestMail.SampleIssue()], language);
        var dkim = signed ? TestMail.Dkim(TestMail.KeyFile().Path) : null;
        var message = TestMail.Builder(dkim).Build(digest, TestMail.Subscriber(language), "wire/3");

        Assert.Equal(TestMail.Bytes(message).Length, EncodedBody.MessageSize(message, Assert.IsType<EncodedBody>(message.Body)));
    }

    [Fact]
    public void Base64_with_personal_values_anywhere_decodes_to_the_joined_bytes_at_every_alignment()
    {
        var random = new Random(7);
        for (var round = 0; round < 300; round++)
        {
            var segments = RandomSegments(random, "a가é\n", 200);
            var values = new PersonalValues(new Recipient(new string('x', random.Next(0, 9)), "https://u.example/" + new string('u', random.Next(0, 7)), "https://p.example/" + new string('p', random.Next(0, 5))));

            var encoded = Encoding.ASCII.GetString(Encode(ContentEncoding.Base64, segments, values));

            Assert.All(encoded.Split("\r\n"), line => Assert.True(line.Length <= 76 && line.Length % 4 == 0, line));
            Assert.Equal(Joined(segments, values), Encoding.UTF8.GetString(Convert.FromBase64String(encoded.Replace("\r\n", ""))));
        }
    }

    [Fact]
    public void Quoted_printable_segments_decode_to_the_joined_text()
    {
        var random = new Random(11);
        for (var round = 0; round < 300; round++)
        {
            var segments = RandomSegments(random, "ab =\t.~가\n\n", 300);
            var values = new PersonalValues(new Recipient(" x  y ", "https://u.example/a=b", "https://p.example/p"));

            var encoded = Encode(ContentEncoding.QuotedPrintable, segments, values);

            var decoder = new QuotedPrintableDecoder();
            var output = new byte[decoder.EstimateOutputLength(encoded.Length)];
            var length = decoder.Decode(encoded, 0, encoded.Length, output);
            Assert.Equal(Joined(segments, values), Encoding.UTF8.GetString(output, 0, length));
            Assert.All(Encoding.ASCII.GetString(encoded).Split("\r\n"), line => Assert.True(line.Length <= 76 && !line.EndsWith(' '), line));
        }
    }

    /// <summary>One to six segments, a third of them personal values, the others random text.</summary>
    private static DigestSegment[] RandomSegments(Random random, string alphabet, int maxLength) =>
        Enumerable.Range(0, random.Next(1, 7)).Select(_ => random.Next(3) == 0
            ? new DigestSegment([], (PersonalValue)random.Next(4))
            : new DigestSegment(Encoding.UTF8.GetBytes(RandomText(random, alphabet, random.Next(0, maxLength))), null)).ToArray();

    private static byte[] Encode(ContentEncoding encoding, DigestSegment[] segments, PersonalValues values)
    {
        var writer = new BodyWriter();
        PartEncoder.Create(encoding, segments).Write(writer, values, html: false);
        return writer.ToArray().SelectMany(m => m.ToArray()).ToArray();
    }

    /// <summary>The text the segments make, in its canonical form (CRLF line ends).</summary>
    private static string Joined(DigestSegment[] segments, PersonalValues values) =>
        Encoding.UTF8.GetString(segments.SelectMany(s => s.Value is { } v ? values.Get(v, html: false) : s.Utf8).ToArray()).Replace("\n", "\r\n");

    private static string RandomText(Random random, string alphabet, int length) =>
        new(Enumerable.Range(0, length).Select(_ => alphabet[random.Next(alphabet.Length)]).ToArray());

    private static string Lf(string? text) => (text ?? "").ReplaceLineEndings("\n");
}
