using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Options;
using MimeKit;
using Newsletter.Configuration;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Tracking;

namespace Newsletter.Benchmarks;

/// <summary>
/// The per-subscriber cost of a digest message for the ten-paper sample issue in both languages,
/// once the shared part is rendered. The baseline builds a MimeMessage with the same headers and
/// the same (already personalised) bodies, so the ratio shows what personalising and signing add
/// on top of MimeKit itself. The tracked variant makes every paper link a signed <c>/r/{token}</c>
/// link of the delivery: its extra time over the plain message, divided by its number of links
/// (<see cref="TrackedLinks"/>), is what tracking costs per link; the token alone is measured too.
/// </summary>
[MemoryDiagnoser]
public class MessageBenchmarks
{
    private DigestTemplate _digest = null!;
    private DigestTemplate _trackedDigest = null!;
    private DigestMessageBuilder _tracking = null!;
    private ClickTokens _tokens = null!;

    /// <summary>The sample issue's links in the both-languages digest: what one tracked message signs.</summary>
    public int TrackedLinks => _trackedDigest.TrackedLinks.Count;
    private DigestMessageBuilder _plain = null!;
    private DigestMessageBuilder _signed = null!;
    private Subscriber _subscriber = null!;
    private PersonalizedDigest _body;
    private int _n;

    [GlobalSetup]
    public void Setup()
    {
        var options = Options.Create(new NewsletterOptions
        {
            PublicUrl = "https://news.example.org",
            From = "PyTorchKR Newsletter <news@news.example.org>",
            Secret = "benchmark-secret-benchmark-secret-0123456789",
            TemplatesDirectory = Path.Combine(AppContext.BaseDirectory, "templates"),
        });
        var d = SampleIssue.Document;
        var issue = new Issue(1, d.Slug, d.Title, d.Intro, d.PeriodFrom, d.PeriodTo, d.Items, IssueStatus.Published, DateTime.UtcNow, DateTime.UtcNow);
        _digest = new DigestRenderer(new TemplateEngine(options), options).RenderAsync([issue], Language.Both).GetAwaiter().GetResult();
        _trackedDigest = new DigestRenderer(new TemplateEngine(options), options, Options.Create(new TrackingOptions()))
            .RenderAsync([issue], Language.Both, tracked: true).GetAwaiter().GetResult();
        _tokens = new ClickTokens(options.Value.Secret!);
        Console.WriteLine($"// tracked links per message: {TrackedLinks}");

        var keyPath = Path.Combine(Path.GetTempPath(), $"bench-dkim-{Environment.ProcessId}.pem");
        using (var rsa = RSA.Create(2048)) File.WriteAllText(keyPath, rsa.ExportPkcs8PrivateKeyPem());
        var signer = new LinkSigner(options.Value.Secret!);
        _plain = new DigestMessageBuilder(options, signer, new DkimSigning(Options.Create(new DkimOptions())), TimeProvider.System);
        _tracking = new DigestMessageBuilder(options, signer, new DkimSigning(Options.Create(new DkimOptions())), TimeProvider.System, clicks: _tokens);
        _signed = new DigestMessageBuilder(options, signer, new DkimSigning(Options.Create(new DkimOptions { Domain = "news.example.org", Selector = "bench", PrivateKeyPath = keyPath })), TimeProvider.System);
        _subscriber = new Subscriber { Email = "minji.kim@example.com", Name = "김민지", PublicId = Guid.NewGuid(), Language = Language.Both };
        _body = _digest.Personalize(new Recipient("김민지", "https://news.example.org/unsubscribe/x", "https://news.example.org/preferences/y"));
    }

    [Benchmark(Baseline = true, Description = "MimeKit message the usual way: BodyBuilder + Prepare (baseline)")]
    public MimeMessage MimeKitOnly()
    {
        var message = new MimeMessage { Subject = _digest.Subject, Date = DateTimeOffset.UtcNow };
        message.From.Add(new MailboxAddress("PyTorchKR Newsletter", "news@news.example.org"));
        message.To.Add(new MailboxAddress(_subscriber.Name, _subscriber.Email));
        message.MessageId = $"{_n++}@news.example.org";
        message.Headers.Add("List-Unsubscribe", "<https://news.example.org/unsubscribe/x>");
        message.Headers.Add("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
        message.Body = new BodyBuilder { TextBody = _body.Text, HtmlBody = _body.Html }.ToMessageBody();
        message.Prepare(EncodingConstraint.SevenBit);
        return message;
    }

    [Benchmark(Description = "Personalised digest message")]
    public MimeMessage Personalised() => _plain.Build(_digest, _subscriber, $"bench/{_n++}");

    // As MailKit writes a message to the server: CRLF line ends.
    private static readonly FormatOptions Wire = new() { NewLineFormat = NewLineFormat.Dos };

    [Benchmark(Description = "Personalised digest message, written out as it goes on the wire")]
    public long PersonalisedAndWritten()
    {
        var message = _plain.Build(_digest, _subscriber, $"bench/{_n++}");
        using var sink = new CountingStream();
        message.WriteTo(Wire, sink);
        return sink.Length;
    }

    [Benchmark(Description = "Personalised digest message with tracked links")]
    public MimeMessage PersonalisedAndTracked() => _tracking.Build(_trackedDigest, _subscriber, $"delivery/{_n++}", ClickCadence.Weekly);

    [Benchmark(Description = "One tracked link's token")]
    public string TrackedLinkToken() => _tokens.Create(new ClickPlace(_n++, 1, 3, 1, DateTimeOffset.UtcNow, Language.Both, ClickCadence.Weekly));

    [Benchmark(Description = "Personalised digest message, DKIM-signed")]
    public MimeMessage PersonalisedAndSigned() => _signed.Build(_digest, _subscriber, $"bench/{_n++}");
}

/// <summary>Counts bytes instead of keeping them, so writing measures encoding, not memory copies.</summary>
internal sealed class CountingStream : Stream
{
    private long _length;
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _length;
    public override long Position { get => _length; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => _length += count;
    public override void Write(ReadOnlySpan<byte> buffer) => _length += buffer.Length;
}
