using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using MimeKit;
using Newsletter.Configuration;
using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Subscribers;

namespace Newsletter.Tests.Infrastructure;

/// <summary>Builders for digests and messages without a database: the sample issue, subscribers, keys.</summary>
public static class TestMail
{
    public const string Secret = "test-secret-test-secret-test-secret-0123456789";
    public const string PublicUrl = "https://news.example.org";

    public static Issue SampleIssue(string? slug = null)
    {
        var d = Newsletter.Issues.SampleIssue.Document;
        return new Issue(1, slug ?? d.Slug, d.Title, d.Intro, d.PeriodFrom, d.PeriodTo, d.Items, IssueStatus.Published, DateTime.UtcNow, DateTime.UtcNow);
    }

    public static Subscriber Subscriber(Language language, string? name = "김민지", string email = "minji.kim@example.com") => new()
    {
        Id = 42,
        PublicId = Guid.NewGuid(),
        Email = email,
        Name = name,
        Language = language,
        Cadence = Cadence.Weekly,
        Status = SubscriberStatus.Active,
    };

    public static NewsletterOptions Options(string? templates = null) => new()
    {
        PublicUrl = PublicUrl,
        From = "PyTorchKR 뉴스레터 <news@news.example.org>",
        ReplyTo = "editors@news.example.org",
        Secret = Secret,
        TemplatesDirectory = templates,
    };

    public static DigestRenderer Renderer(NewsletterOptions? options = null, TrackingOptions? tracking = null)
    {
        var o = Microsoft.Extensions.Options.Options.Create(options ?? Options());
        return new DigestRenderer(new TemplateEngine(o), o, Microsoft.Extensions.Options.Options.Create(tracking ?? new TrackingOptions { Clicks = "off" }));
    }

    public static DigestMessageBuilder Builder(DkimOptions? dkim = null, TimeProvider? clock = null, NewsletterOptions? options = null) => new(
        Microsoft.Extensions.Options.Options.Create(options ?? Options()),
        new LinkSigner(Secret),
        new DkimSigning(Microsoft.Extensions.Options.Options.Create(dkim ?? new DkimOptions())),
        clock ?? TimeProvider.System,
        clicks: new Newsletter.Tracking.ClickTokens(Secret));

    /// <param name="tracked">With click tracking (aggregate): every paper link a <c>/r/</c> link of delivery 12345.</param>
    public static async Task<MimeMessage> MessageAsync(Language language, DkimOptions? dkim = null, string? name = "김민지", Issue? issue = null, bool tracked = false)
    {
        var digest = await Renderer(tracking: tracked ? new TrackingOptions() : null).RenderAsync([issue ?? SampleIssue()], language, tracked);
        return Received(Builder(dkim).Build(digest, Subscriber(language, name), tracked ? "delivery/12345" : $"test/{Guid.NewGuid()}", Newsletter.Tracking.ClickCadence.Weekly));
    }

    /// <summary>The message as a mail client reads it: parsed from the bytes that go on the wire.</summary>
    public static MimeMessage Received(MimeMessage sent) => MimeMessage.Load(new MemoryStream(Bytes(sent)));

    public static byte[] Bytes(MimeMessage message)
    {
        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        using var stream = new MemoryStream();
        message.WriteTo(format, stream);
        return stream.ToArray();
    }

    /// <summary>A fresh RSA key written as PEM; PKCS#8 unless <paramref name="pkcs1"/>.</summary>
    public static (string Path, RSA Key) KeyFile(int bits = 2048, bool pkcs1 = false)
    {
        var rsa = RSA.Create(bits);
        var path = System.IO.Path.Combine(NewsletterProcess.TempDirectory(), "dkim.pem");
        File.WriteAllText(path, pkcs1 ? rsa.ExportRSAPrivateKeyPem() : rsa.ExportPkcs8PrivateKeyPem());
        return (path, rsa);
    }

    public static DkimOptions Dkim(string keyPath) => new() { Domain = "news.example.org", Selector = "nl2026", PrivateKeyPath = keyPath };
}
