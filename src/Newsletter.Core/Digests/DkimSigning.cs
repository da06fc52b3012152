using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using MimeKit;
using MimeKit.Cryptography;
using Newsletter.Configuration;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Security;

namespace Newsletter.Digests;

/// <summary>
/// DKIM signing of outgoing mail with MimeKit: rsa-sha256, relaxed/relaxed, over the headers a
/// mailbox provider checks, with List-Unsubscribe, List-Unsubscribe-Post, From and Subject
/// oversigned so a header added in transit breaks the signature. Sign only after
/// <see cref="MimeMessage.Prepare"/>, and change nothing afterwards.
/// </summary>
public sealed class DkimSigning
{
    public const int MinimumKeyBits = 2048;

    /// <summary>The signed headers, in order; the last four are listed twice (oversigning).</summary>
    public static readonly string[] SignedHeaders =
    [
        "From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Reply-To",
        "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post",
        "List-Unsubscribe", "List-Unsubscribe-Post", "From", "Subject",
    ];

    private static readonly string[] SignedFields = SignedHeaders.Select(h => h.ToLowerInvariant()).ToArray();
    private static readonly string SignedFieldList = string.Join(':', SignedFields);

    private readonly DkimSigner? _signer;
    private readonly RSA? _key;
    private readonly string? _domain;
    private readonly string? _selector;
    private readonly DkimCanonicalizationAlgorithm _headerCanonicalization;
    private readonly string _tagsBeforeTime = "";

    public DkimSigning(IOptions<DkimOptions> options)
        : this(options, DkimCanonicalizationAlgorithm.Relaxed, DkimCanonicalizationAlgorithm.Relaxed)
    {
    }

    internal DkimSigning(IOptions<DkimOptions> options, DkimCanonicalizationAlgorithm headers, DkimCanonicalizationAlgorithm body)
    {
        var o = options.Value;
        if (!o.Enabled) return;
        _key = LoadPrivateKey(o.PrivateKeyPath!);
        _domain = o.Domain!;
        _selector = o.Selector!;
        _headerCanonicalization = headers;
        PublicKeyRecord = DnsRecord(_key);
        RecordName = $"{o.Selector}._domainkey.{o.Domain}";
        _signer = new PlatformRsaDkimSigner(_key, _domain, _selector)
        {
            HeaderCanonicalizationAlgorithm = headers,
            BodyCanonicalizationAlgorithm = body,
        };
        // The tags in the order MimeKit's signer writes them.
        _tagsBeforeTime = $"v=1; a=rsa-sha256; d={_domain}; s={_selector}; c={Name(headers)}/{Name(body)}; t=";
    }

    public bool Enabled => _signer is not null;

    /// <summary>The TXT record value to publish, <c>v=DKIM1; k=rsa; p=...</c>.</summary>
    public string? PublicKeyRecord { get; }

    /// <summary>Where to publish it: <c>{selector}._domainkey.{domain}</c>.</summary>
    public string? RecordName { get; }

    /// <summary>Signs a prepared message in place; does nothing when DKIM is not configured.</summary>
    public void Sign(MimeMessage message) => Sign(message, DateTimeOffset.UtcNow.ToUnixTimeSeconds());

    /// <summary>Signs with the signature time <paramref name="timestamp"/> (<c>t=</c>, Unix seconds).</summary>
    internal void Sign(MimeMessage message, long timestamp)
    {
        if (_signer is null) return;
        if (message.Body is not EncodedBody body)
        {
            // Listing a header the message lacks (Reply-To when none is set) is deliberate: adding it
            // later breaks the signature.
            _signer.Sign(message, SignedHeaders);
            return;
        }
        // A body encoded by us is its own canonical form (see DigestBody): its hash needs no
        // canonicalising pass, and the headers are few. The same signature MimeKit's signer makes.
        var value = $"{_tagsBeforeTime}{timestamp}; h={SignedFieldList}; bh={Convert.ToBase64String(body.Sha256())}; b=";
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var canonical = new HeaderCanonicalizer(_headerCanonicalization, hash);
        canonical.WriteSigned(message, SignedFields);
        var dkim = new Header(HeaderId.DkimSignature, value);
        message.Headers.Insert(0, dkim);
        canonical.Write(dkim, isSignature: true);
        var signature = _key!.SignHash(hash.GetHashAndReset(), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        dkim.Value += Convert.ToBase64String(signature);
    }

    private static string Name(DkimCanonicalizationAlgorithm algorithm) => algorithm == DkimCanonicalizationAlgorithm.Relaxed ? "relaxed" : "simple";

    /// <summary>DKIM header canonicalisation (RFC 6376 3.4.1, 3.4.2) into a hash, as MimeKit's signer and verifier do it.</summary>
    private readonly struct HeaderCanonicalizer(DkimCanonicalizationAlgorithm algorithm, IncrementalHash hash)
    {
        /// <summary>Each listed field, the last instance first for a repeated name; absent ones add nothing.</summary>
        public void WriteSigned(MimeMessage message, string[] fields)
        {
            var signed = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var field in fields)
            {
                var headers = field.StartsWith("content-", StringComparison.Ordinal) ? message.Body!.Headers : message.Headers;
                var skip = signed.GetValueOrDefault(field);
                for (var k = headers.Count - 1; k >= 0; k--)
                {
                    if (!headers[k].Field.Equals(field, StringComparison.OrdinalIgnoreCase) || skip-- > 0) continue;
                    Write(headers[k], isSignature: false);
                    signed[field] = signed.GetValueOrDefault(field) + 1;
                    break;
                }
            }
        }

        public void Write(Header header, bool isSignature)
        {
            var raw = header.RawValue;
            if (algorithm == DkimCanonicalizationAlgorithm.Relaxed)
            {
                hash.AppendData(Encoding.ASCII.GetBytes(header.Field.ToLowerInvariant()));
                hash.AppendData(":"u8);
                var i = 0;
                while (i < raw.Length && IsSpace(raw[i])) i++;
                while (i < raw.Length)
                {
                    var start = i;
                    while (i < raw.Length && IsSpace(raw[i])) i++;
                    if (i >= raw.Length) break;
                    if (i > start) hash.AppendData(" "u8);
                    start = i;
                    while (i < raw.Length && !IsSpace(raw[i])) i++;
                    hash.AppendData(raw.AsSpan(start, i - start));
                }
                if (!isSignature) hash.AppendData("\r\n"u8);
                return;
            }
            hash.AppendData(header.RawField);
            hash.AppendData(":"u8);
            var length = raw.Length;
            if (isSignature && length > 0 && raw[length - 1] == '\n') length -= length > 1 && raw[length - 2] == '\r' ? 2 : 1;
            // Written with CRLF line ends, as on the wire.
            var from = 0;
            for (var i = 0; i < length; i++)
            {
                if (raw[i] != '\n' || (i > 0 && raw[i - 1] == '\r')) continue;
                hash.AppendData(raw.AsSpan(from, i - from));
                hash.AppendData("\r\n"u8);
                from = i + 1;
            }
            hash.AppendData(raw.AsSpan(from, length - from));
        }

        private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';
    }

    /// <summary>Loads an RSA private key from PEM (PKCS#1 or unencrypted PKCS#8).</summary>
    /// <exception cref="DkimKeyException">The file is missing, unreadable, not an RSA key, or shorter than 2048 bits.</exception>
    public static RSA LoadPrivateKey(string path)
    {
        if (!File.Exists(path))
            throw new DkimKeyException($"Newsletter__Dkim__PrivateKeyPath: '{path}' does not exist");
        var rsa = RSA.Create();
        try
        {
            rsa.ImportFromPem(File.ReadAllText(path));
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            rsa.Dispose();
            throw new DkimKeyException($"Newsletter__Dkim__PrivateKeyPath: '{path}' is not a PEM RSA private key (PKCS#1 or unencrypted PKCS#8): {e.Message}");
        }
        try
        {
            rsa.ExportParameters(includePrivateParameters: true);
        }
        catch (CryptographicException)
        {
            rsa.Dispose();
            throw new DkimKeyException($"Newsletter__Dkim__PrivateKeyPath: '{path}' holds a public key; a private key is needed");
        }
        if (rsa.KeySize < MinimumKeyBits)
        {
            var bits = rsa.KeySize;
            rsa.Dispose();
            throw new DkimKeyException($"Newsletter__Dkim__PrivateKeyPath: the key has {bits} bits; at least {MinimumKeyBits} are required");
        }
        return rsa;
    }

    public static string DnsRecord(RSA key) => $"v=DKIM1; k=rsa; p={Convert.ToBase64String(key.ExportSubjectPublicKeyInfo())}";

    /// <summary>The public key in the form MimeKit's verifier takes, from a TXT record value.</summary>
    public static AsymmetricKeyParameter PublicKeyFromRecord(string record)
    {
        var p = record.Split(';').Select(t => t.Trim()).First(t => t.StartsWith("p=", StringComparison.Ordinal))[2..];
        return PublicKeyFactory.CreateKey(Convert.FromBase64String(p));
    }
}

/// <summary>
/// MimeKit's DKIM signer with the signature computed by the platform's RSA (OpenSSL here) instead of
/// BouncyCastle's managed RSA: the same PKCS#1 v1.5 signature, byte for byte, in about an eighth of
/// the time. MimeKit still canonicalises and hashes what it signs; only the signing context differs.
/// </summary>
internal sealed class PlatformRsaDkimSigner(RSA key, string domain, string selector)
    : DkimSigner(DotNetUtilities.GetRsaKeyPair(key).Private, domain, selector, DkimSignatureAlgorithm.RsaSha256)
{
    protected override Org.BouncyCastle.Crypto.ISigner CreateSigningContext() => new RsaSha256(key);

    /// <summary>SHA-256 over what MimeKit writes, then RSASSA-PKCS1-v1_5 with the platform's RSA.</summary>
    private sealed class RsaSha256(RSA key) : Org.BouncyCastle.Crypto.ISigner
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public string AlgorithmName => "SHA-256withRSA";

        public void Init(bool forSigning, Org.BouncyCastle.Crypto.ICipherParameters parameters) { }

        public void Update(byte input) => _hash.AppendData([input]);

        public void BlockUpdate(byte[] input, int inOff, int inLen) => _hash.AppendData(input, inOff, inLen);

        public void BlockUpdate(ReadOnlySpan<byte> input) => _hash.AppendData(input);

        public int GetMaxSignatureSize() => key.KeySize / 8;

        public byte[] GenerateSignature() => key.SignHash(_hash.GetHashAndReset(), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);

        public bool VerifySignature(byte[] signature) => key.VerifyHash(_hash.GetHashAndReset(), signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);

        public void Reset() => _hash.GetHashAndReset();
    }
}

/// <summary>The configured DKIM key cannot be used.</summary>
public sealed class DkimKeyException(string message) : Exception(message);
