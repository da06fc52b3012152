using System.Diagnostics;
using System.Text;
using MimeKit;
using MimeKit.Cryptography;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Digests;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;
using Org.BouncyCastle.Crypto;

namespace Newsletter.Tests.Digests;

public sealed class DkimTests
{
    private sealed class RecordLocator(string record) : DkimPublicKeyLocatorBase
    {
        public override AsymmetricKeyParameter LocatePublicKey(string methods, string domain, string selector, CancellationToken cancellationToken = default) =>
            DkimSigning.PublicKeyFromRecord(record);

        public override Task<AsymmetricKeyParameter> LocatePublicKeyAsync(string methods, string domain, string selector, CancellationToken cancellationToken = default) =>
            Task.FromResult(LocatePublicKey(methods, domain, selector, cancellationToken));
    }

    private static bool VerifiesWithMimeKit(MimeMessage message, string record)
    {
        var index = message.Headers.IndexOf(HeaderId.DkimSignature);
        return new DkimVerifier(new RecordLocator(record)).Verify(message, message.Headers[index]);
    }

    private static async Task<(MimeMessage Message, string Record)> SignedAsync(bool pkcs1 = false)
    {
        var (path, key) = TestMail.KeyFile(pkcs1: pkcs1);
        var message = await TestMail.MessageAsync(Language.Both, TestMail.Dkim(path));
        return (message, DkimSigning.DnsRecord(key));
    }

    [Fact]
    public async Task The_platform_rsa_signature_is_byte_for_byte_the_one_bouncy_castle_computes()
    {
        var (path, key) = TestMail.KeyFile();
        var digest = await TestMail.Renderer().RenderAsync([TestMail.SampleIssue()], Language.Ko);
        var ours = new PlatformRsaDkimSigner(key, "news.example.org", "nl2026")
            { HeaderCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed, BodyCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed };
        var theirs = new DkimSigner(path, "news.example.org", "nl2026", DkimSignatureAlgorithm.RsaSha256)
            { HeaderCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed, BodyCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed };
        for (var attempt = 0; ; attempt++)
        {
            var message = TestMail.Builder().Build(digest, TestMail.Subscriber(Language.Ko), "dkim/identical");
            message.Prepare(EncodingConstraint.SevenBit);
            var bytes = TestMail.Bytes(message);
            var a = MimeMessage.Load(new MemoryStream(bytes));
            var b = MimeMessage.Load(new MemoryStream(bytes));
            ours.Sign(a, DkimSigning.SignedHeaders);
            theirs.Sign(b, DkimSigning.SignedHeaders);
            var (ha, hb) = (a.Headers[HeaderId.DkimSignature]!, b.Headers[HeaderId.DkimSignature]!);
            // Both carry t= (seconds): a second may tick between the two; then sign again.
            if (ha != hb && attempt < 3 && ha.Split("t=")[1][..10] != hb.Split("t=")[1][..10]) continue;
            Assert.Equal(hb, ha);
            Assert.True(VerifiesWithMimeKit(a, DkimSigning.DnsRecord(key)));
            break;
        }
    }

    /// <summary>MimeKit's own signer (BouncyCastle) with the signature time fixed.</summary>
    private sealed class FixedTimeSigner(string path, DkimCanonicalizationAlgorithm c, long time)
        : DkimSigner(path, "news.example.org", "nl2026", DkimSignatureAlgorithm.RsaSha256)
    {
        public FixedTimeSigner Init()
        {
            HeaderCanonicalizationAlgorithm = c;
            BodyCanonicalizationAlgorithm = c;
            return this;
        }

        protected override long GetTimestamp() => time;
    }

    [Theory]
    [InlineData(Language.Ko, DkimCanonicalizationAlgorithm.Relaxed)]
    [InlineData(Language.En, DkimCanonicalizationAlgorithm.Relaxed)]
    [InlineData(Language.Both, DkimCanonicalizationAlgorithm.Simple)]
    [InlineData(Language.En, DkimCanonicalizationAlgorithm.Simple)]
    public async Task A_digest_signed_over_its_encoded_body_carries_the_signature_mimekit_computes_over_the_wire_bytes(Language language, DkimCanonicalizationAlgorithm c)
    {
        var (path, key) = TestMail.KeyFile();
        var options = TestMail.Dkim(path);
        var digest = await TestMail.Renderer().RenderAsync([TestMail.SampleIssue()], language);
        // A name with spaces at the edges, a run of spaces, '=' and an emoji: the encodings' hard cases.
        var built = TestMail.Builder().Build(digest, TestMail.Subscriber(language, "  Kim  =Minji= 🦀 "), "dkim/fast");
        var unsigned = TestMail.Bytes(built);
        const long time = 1_790_000_000;

        new DkimSigning(Microsoft.Extensions.Options.Options.Create(options), c, c).Sign(built, time);
        var theirs = MimeMessage.Load(new MemoryStream(unsigned));
        new FixedTimeSigner(path, c, time).Init().Sign(theirs, DkimSigning.SignedHeaders);

        Assert.Equal(theirs.Headers[HeaderId.DkimSignature], built.Headers[HeaderId.DkimSignature]);
        var received = TestMail.Received(built);
        Assert.True(VerifiesWithMimeKit(received, DkimSigning.DnsRecord(key)));
        var eml = Path.Combine(NewsletterProcess.TempDirectory(), "signed.eml");
        await File.WriteAllBytesAsync(eml, TestMail.Bytes(built));
        Assert.Equal("pass", await PythonDkimAsync(eml, DkimSigning.DnsRecord(key)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_signed_digest_verifies_with_pkcs8_and_pkcs1_keys(bool pkcs1)
    {
        var (message, record) = await SignedAsync(pkcs1);
        var reparsed = MimeMessage.Load(new MemoryStream(TestMail.Bytes(message)));

        Assert.True(VerifiesWithMimeKit(reparsed, record));
    }

    [Fact]
    public async Task The_signature_is_relaxed_rsa_sha256_and_oversigns_the_unsubscribe_headers()
    {
        var (message, _) = await SignedAsync();
        var signature = message.Headers[HeaderId.DkimSignature]!;
        var tags = signature.Split(';').Select(t => t.Trim()).Where(t => t.Contains('=')).ToDictionary(t => t[..t.IndexOf('=')], t => t[(t.IndexOf('=') + 1)..]);

        Assert.Equal("rsa-sha256", tags["a"]);
        Assert.Equal("relaxed/relaxed", tags["c"]);
        Assert.Equal("news.example.org", tags["d"]);
        Assert.Equal("nl2026", tags["s"]);
        var signed = tags["h"].Split(':').Select(h => h.Trim().ToLowerInvariant()).ToList();
        foreach (var name in new[] { "list-unsubscribe", "list-unsubscribe-post", "from", "subject" })
            Assert.Equal(2, signed.Count(h => h == name));
        foreach (var name in new[] { "to", "date", "message-id", "mime-version", "content-type", "list-id", "reply-to" })
            Assert.Contains(name, signed);
    }

    [Fact]
    public async Task Changing_list_unsubscribe_after_signing_breaks_the_signature()
    {
        var (message, record) = await SignedAsync();
        message.Headers[HeaderId.ListUnsubscribe] = "<https://evil.example/unsubscribe>";
        Assert.False(VerifiesWithMimeKit(message, record));
    }

    [Fact]
    public async Task An_added_second_list_unsubscribe_breaks_the_signature()
    {
        var (message, record) = await SignedAsync();
        var raw = "List-Unsubscribe: <https://evil.example/u>\r\n" + Encoding.ASCII.GetString(TestMail.Bytes(message));
        var injected = MimeMessage.Load(new MemoryStream(Encoding.ASCII.GetBytes(raw)));
        Assert.False(VerifiesWithMimeKit(injected, record));
    }

    [Fact]
    public async Task An_independent_verifier_python_dkim_agrees_and_rejects_a_changed_message()
    {
        var (message, record) = await SignedAsync();
        var dir = NewsletterProcess.TempDirectory();
        var good = Path.Combine(dir, "good.eml");
        var bad = Path.Combine(dir, "bad.eml");
        await File.WriteAllBytesAsync(good, TestMail.Bytes(message));
        await File.WriteAllTextAsync(bad, Encoding.ASCII.GetString(TestMail.Bytes(message)).Replace("List-Unsubscribe-Post: List-Unsubscribe=One-Click", "List-Unsubscribe-Post: List-Unsubscribe=Two-Clicks"));

        Assert.Equal("pass", await PythonDkimAsync(good, record));
        Assert.Equal("fail", await PythonDkimAsync(bad, record));
    }

    [Fact]
    public async Task The_signature_survives_a_trip_through_an_smtp_server()
    {
        var (path, key) = TestMail.KeyFile();
        var message = await TestMail.MessageAsync(Language.Both, TestMail.Dkim(path));
        await using var smtp = new TestSmtpServer();
        var transport = new SmtpTransport(new SmtpOptions { Host = "127.0.0.1", Port = smtp.Port, Security = SmtpSecurity.None, LocalDomain = "mta1.news.example.org" });

        await transport.SendAsync(message, new MailboxAddress("", "bounces@news.example.org"), message.To.Mailboxes.Single());

        var received = Assert.Single(smtp.Messages);
        Assert.Equal("bounces@news.example.org", received.MailFrom);
        Assert.Equal(["minji.kim@example.com"], received.Recipients);
        Assert.True(VerifiesWithMimeKit(received.Message, DkimSigning.DnsRecord(key)));
        Assert.All(received.Raw.Take(Array.IndexOf(received.Raw, (byte)'\n', 0) + 2000), b => Assert.True(b < 128));
    }

    [Fact]
    public void A_key_shorter_than_2048_bits_is_refused_with_its_size()
    {
        var (path, _) = TestMail.KeyFile(bits: 1024);
        var error = Assert.Throws<DkimKeyException>(() => DkimSigning.LoadPrivateKey(path));
        Assert.Contains("1024 bits", error.Message);
        Assert.Contains("Newsletter__Dkim__PrivateKeyPath", error.Message);
    }

    [Fact]
    public void A_file_that_is_not_a_key_is_refused()
    {
        var path = Path.Combine(NewsletterProcess.TempDirectory(), "key.pem");
        File.WriteAllText(path, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        Assert.Throws<DkimKeyException>(() => DkimSigning.LoadPrivateKey(path));
    }

    [Fact]
    public async Task A_bad_key_stops_start_up_with_a_clear_message()
    {
        var (path, _) = TestMail.KeyFile(bits: 1024);
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Newsletter"] = "Host=127.0.0.1;Port=1;Database=none;Username=x;Password=y",
            ["Newsletter__Dkim__Domain"] = "news.example.org",
            ["Newsletter__Dkim__Selector"] = "nl2026",
            ["Newsletter__Dkim__PrivateKeyPath"] = path,
        };

        var result = await NewsletterProcess.RunAsync(NewsletterProcess.TempDirectory(), env, "migrate");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("configuration error: Newsletter__Dkim__PrivateKeyPath: the key has 1024 bits; at least 2048 are required", result.Error);
    }

    [Fact]
    public async Task Dkim_dns_prints_the_record_for_the_configured_key()
    {
        await using var db = await TestDatabase.CreateAsync();
        var (path, key) = TestMail.KeyFile();
        var env = new Dictionary<string, string?>
        {
            ["ConnectionStrings__Newsletter"] = db.ConnectionString,
            ["Newsletter__Dkim__Domain"] = "news.example.org",
            ["Newsletter__Dkim__Selector"] = "nl2026",
            ["Newsletter__Dkim__PrivateKeyPath"] = path,
        };

        var result = await NewsletterProcess.RunAsync(NewsletterProcess.TempDirectory(), env, "dkim", "dns");

        Assert.True(result.ExitCode == 0, result.Error);
        Assert.StartsWith("nl2026._domainkey.news.example.org. IN TXT (", result.Output);
        var joined = string.Concat(System.Text.RegularExpressions.Regex.Matches(result.Output, "\"([^\"]*)\"").Select(m => m.Groups[1].Value));
        Assert.Equal(DkimSigning.DnsRecord(key), joined);
    }

    private static async Task<string> PythonDkimAsync(string emlPath, string record)
    {
        const string script = """
            import sys, dkim
            data = open(sys.argv[1], 'rb').read()
            record = sys.argv[2].encode()
            print('pass' if dkim.verify(data, dnsfunc=lambda name, timeout=5: record) else 'fail')
            """;
        // Debian's python3-dkim lives in the system interpreter; .ci/run installs it.
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-c", script, emlPath, record }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, "python3-dkim failed (is the python3-dkim package installed?): " + error);
        return output.Trim();
    }
}
