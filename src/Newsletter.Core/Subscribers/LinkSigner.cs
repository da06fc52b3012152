using System.Buffers.Binary;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Newsletter.Subscribers;

/// <summary>What a signed link may do. A token for one purpose is refused for every other.</summary>
public enum LinkPurpose : byte
{
    Unsubscribe = 1,
    Preferences = 2,
    Confirm = 3,
}

/// <summary>
/// Signs and checks the per-subscriber tokens in links: <c>base64url(payload).base64url(mac)</c>,
/// where the payload holds a version, the purpose, the subscriber's random public id and the time of
/// issue, and the MAC is HMAC-SHA256 under <c>Newsletter__Secret</c> (truncated to 128 bits).
/// Checking compares in constant time and never reveals why a token was refused.
/// </summary>
public sealed class LinkSigner
{
    private const byte Version = 1;
    private const int PayloadLength = 1 + 1 + 16 + 8;
    private const int MacLength = 16;
    private static readonly byte[] Domain = "newsletter/link"u8.ToArray();

    private readonly byte[] _key;

    public LinkSigner(string secret)
    {
        ArgumentException.ThrowIfNullOrEmpty(secret);
        _key = SHA256.HashData(Encoding.UTF8.GetBytes(secret));
    }

    public string Create(LinkPurpose purpose, Guid subscriber, DateTimeOffset issuedAt)
    {
        Span<byte> payload = stackalloc byte[PayloadLength];
        payload[0] = Version;
        payload[1] = (byte)purpose;
        subscriber.TryWriteBytes(payload.Slice(2, 16));
        BinaryPrimitives.WriteInt64BigEndian(payload[18..], issuedAt.ToUnixTimeSeconds());
        Span<byte> mac = stackalloc byte[MacLength];
        Sign(payload, mac);
        return Base64Url.EncodeToString(payload.ToArray()) + "." + Base64Url.EncodeToString(mac.ToArray());
    }

    /// <summary>
    /// Checks <paramref name="token"/> for <paramref name="purpose"/>; false for anything forged,
    /// truncated, of another purpose, or older than <paramref name="maxAge"/> at <paramref name="now"/>.
    /// </summary>
    public bool TryVerify(string? token, LinkPurpose purpose, DateTimeOffset now, TimeSpan? maxAge, out Guid subscriber)
    {
        subscriber = Guid.Empty;
        if (string.IsNullOrEmpty(token) || token.Length > 128) return false;
        var dot = token.IndexOf('.');
        if (dot <= 0) return false;
        byte[] payload, mac;
        try
        {
            payload = Base64Url.DecodeFromChars(token.AsSpan(0, dot));
            mac = Base64Url.DecodeFromChars(token.AsSpan(dot + 1));
        }
        catch (FormatException)
        {
            return false;
        }
        if (payload.Length != PayloadLength || mac.Length != MacLength) return false;
        Span<byte> expected = stackalloc byte[MacLength];
        Sign(payload, expected);
        if (!CryptographicOperations.FixedTimeEquals(expected, mac)) return false;
        if (payload[0] != Version || payload[1] != (byte)purpose) return false;
        var issued = DateTimeOffset.FromUnixTimeSeconds(BinaryPrimitives.ReadInt64BigEndian(payload.AsSpan(18)));
        if (maxAge is { } age && (now - issued > age || issued - now > TimeSpan.FromMinutes(5))) return false;
        subscriber = new Guid(payload.AsSpan(2, 16));
        return true;
    }

    private void Sign(ReadOnlySpan<byte> payload, Span<byte> mac)
    {
        Span<byte> input = stackalloc byte[Domain.Length + payload.Length];
        Domain.CopyTo(input);
        payload.CopyTo(input[Domain.Length..]);
        Span<byte> full = stackalloc byte[32];
        HMACSHA256.HashData(_key, input, full);
        full[..MacLength].CopyTo(mac);
    }
}
