using System.Buffers.Binary;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Newsletter.Subscribers;

namespace Newsletter.Tracking;

/// <summary>Who a digest went to, as far as click counts need it: language and cadence, never a name.</summary>
public enum ClickCadence : byte { Weekly = 0, Daily = 1, Broadcast = 2 }

/// <summary>
/// One tracked link of one delivery: which delivery, which link of which issue (paper
/// <see cref="Item"/>, link <see cref="Link"/>, both counted from 0), when the message was made,
/// and the reader's language and cadence then.
/// </summary>
public readonly record struct ClickPlace(long DeliveryId, long IssueId, int Item, int Link, DateTimeOffset SentAt, Language Language, ClickCadence Cadence);

/// <summary>
/// The token of a tracked link, <c>/r/{token}</c>: a 20-byte payload (version, delivery, issue,
/// paper, link, time the message was made, language and cadence) and an HMAC-SHA256 of it under a
/// key derived from <c>Newsletter__Secret</c> for this purpose only, truncated to 96 bits, in one
/// base64url string of 43 characters. A token of another purpose (an unsubscribe link's) has another
/// shape and another key; a forged, truncated or edited one fails the MAC.
/// </summary>
public sealed class ClickTokens
{
    private const byte Version = 1;
    private const int PayloadLength = 20;
    private const int MacLength = 12;
    public const int Length = 43; // base64url of 32 bytes, unpadded

    private readonly byte[] _key;

    // One HMAC per thread, keyed once: setting the key up is most of the cost of a short MAC.
    [ThreadStatic] private static (ClickTokens Owner, IncrementalHash Hmac)? t_hmac;

    public ClickTokens(string secret)
    {
        ArgumentException.ThrowIfNullOrEmpty(secret);
        _key = SHA256.HashData(Encoding.UTF8.GetBytes("newsletter/click-tokens\n" + secret));
    }

    public string Create(in ClickPlace place)
    {
        if (place.IssueId is < 0 or > uint.MaxValue || place.Item is < 0 or > 255 || place.Link is < 0 or > 255)
            throw new ArgumentOutOfRangeException(nameof(place), "issue, paper or link out of the token's range");
        Span<byte> token = stackalloc byte[PayloadLength + MacLength];
        token[0] = Version;
        BinaryPrimitives.WriteInt64BigEndian(token[1..], place.DeliveryId);
        BinaryPrimitives.WriteUInt32BigEndian(token[9..], (uint)place.IssueId);
        token[13] = (byte)place.Item;
        token[14] = (byte)place.Link;
        BinaryPrimitives.WriteUInt32BigEndian(token[15..], (uint)Math.Max(0, place.SentAt.ToUnixTimeSeconds()));
        token[19] = (byte)((int)place.Language | ((int)place.Cadence << 4));
        Span<byte> full = stackalloc byte[32];
        Mac(token[..PayloadLength], full);
        full[..MacLength].CopyTo(token[PayloadLength..]);
        return Base64Url.EncodeToString(token);
    }

    /// <summary>
    /// A keyed hash of a delivery (8 bytes): the same for every request from one message, so
    /// requests can be grouped per reader without naming the delivery or the reader.
    /// </summary>
    public byte[] Reader(long deliveryId)
    {
        Span<byte> input = stackalloc byte[9];
        input[0] = 0xff; // never a token's first byte (the version)
        BinaryPrimitives.WriteInt64BigEndian(input[1..], deliveryId);
        Span<byte> full = stackalloc byte[32];
        Mac(input, full);
        return full[..8].ToArray();
    }

    private void Mac(ReadOnlySpan<byte> data, Span<byte> mac)
    {
        if (t_hmac is not { } cached || !ReferenceEquals(cached.Owner, this))
        {
            t_hmac?.Hmac.Dispose();
            t_hmac = cached = (this, IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key));
        }
        cached.Hmac.AppendData(data);
        cached.Hmac.GetHashAndReset(mac);
    }

    private static int Base64Value(char c) => c switch
    {
        >= 'A' and <= 'Z' => c - 'A',
        >= 'a' and <= 'z' => c - 'a' + 26,
        >= '0' and <= '9' => c - '0' + 52,
        '-' => 62,
        '_' => 63,
        _ => 3, // not base64url: refused
    };

    /// <summary>The place a token names; false for anything not made by <see cref="Create"/> with this secret.</summary>
    public bool TryRead(ReadOnlySpan<char> token, out ClickPlace place)
    {
        place = default;
        // 43 characters carry 258 bits: the last one's two spare bits must be zero, so each token has one spelling.
        if (token.Length != Length || (Base64Value(token[^1]) & 3) != 0) return false;
        Span<byte> bytes = stackalloc byte[PayloadLength + MacLength];
        if (!Base64Url.TryDecodeFromChars(token, bytes, out var written) || written != bytes.Length) return false;
        Span<byte> full = stackalloc byte[32];
        Mac(bytes[..PayloadLength], full);
        if (!CryptographicOperations.FixedTimeEquals(full[..MacLength], bytes[PayloadLength..])) return false;
        if (bytes[0] != Version) return false;
        var language = bytes[19] & 0x0f;
        var cadence = bytes[19] >> 4;
        if (language > (int)Language.Both || cadence > (int)ClickCadence.Broadcast) return false;
        place = new ClickPlace(
            BinaryPrimitives.ReadInt64BigEndian(bytes[1..]),
            BinaryPrimitives.ReadUInt32BigEndian(bytes[9..]),
            bytes[13], bytes[14],
            DateTimeOffset.FromUnixTimeSeconds(BinaryPrimitives.ReadUInt32BigEndian(bytes[15..])),
            (Language)language, (ClickCadence)cadence);
        return true;
    }
}
