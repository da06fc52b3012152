using System.Security.Cryptography;
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

    private readonly DkimSigner? _signer;

    public DkimSigning(IOptions<DkimOptions> options)
    {
        var o = options.Value;
        if (!o.Enabled) return;
        var key = LoadPrivateKey(o.PrivateKeyPath!);
        PublicKeyRecord = DnsRecord(key);
        RecordName = $"{o.Selector}._domainkey.{o.Domain}";
        _signer = new PlatformRsaDkimSigner(key, o.Domain!, o.Selector!)
        {
            HeaderCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
            BodyCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
        };
    }

    public bool Enabled => _signer is not null;

    /// <summary>The TXT record value to publish, <c>v=DKIM1; k=rsa; p=...</c>.</summary>
    public string? PublicKeyRecord { get; }

    /// <summary>Where to publish it: <c>{selector}._domainkey.{domain}</c>.</summary>
    public string? RecordName { get; }

    /// <summary>Signs a prepared message in place; does nothing when DKIM is not configured.</summary>
    public void Sign(MimeMessage message)
    {
        // Listing a header the message lacks (Reply-To when none is set) is deliberate: adding it
        // later breaks the signature.
        _signer?.Sign(message, SignedHeaders);
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
