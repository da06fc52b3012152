using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Newsletter.Bounces;

/// <summary>
/// The keys that tie mail coming back to the delivery it answers, both authenticated with
/// <c>Newsletter__Secret</c> so a forged bounce cannot name someone else's delivery:
/// <list type="bullet">
/// <item>the envelope sender (VERP), <c>bounces+{id}-{mac}@{Newsletter__Bounces__Domain}</c>, lower
/// case only (some MTAs fold the local part);</item>
/// <item>the Message-ID, <c>{id as 16 hex digits}{mac as 16 hex digits}@{from domain}</c>, the same
/// every time the delivery is built, for reports that lost the envelope.</item>
/// </list>
/// </summary>
public sealed class DeliveryKeys
{
    public const string ReturnPathPrefix = "bounces+";
    private const byte ReturnPathPurpose = 1;
    private const byte MessageIdPurpose = 2;
    private const string Base32 = "abcdefghijklmnopqrstuvwxyz234567";

    private readonly byte[] _key;

    public DeliveryKeys(string secret)
    {
        ArgumentException.ThrowIfNullOrEmpty(secret);
        _key = SHA256.HashData(Encoding.UTF8.GetBytes("newsletter/delivery-keys\n" + secret));
    }

    public string ReturnPath(long deliveryId, string domain) => $"{ReturnPathPrefix}{deliveryId}-{Encode(Mac(ReturnPathPurpose, deliveryId))}@{domain}";

    /// <summary>The delivery an envelope recipient (or a header that kept it) names, when its MAC is right and its domain is ours.</summary>
    public bool TryReadReturnPath(string? address, string domain, out long deliveryId)
    {
        deliveryId = 0;
        if (string.IsNullOrEmpty(address) || address.Length > 200) return false;
        address = address.Trim().Trim('<', '>');
        var at = address.LastIndexOf('@');
        if (at < 0 || !address[(at + 1)..].Equals(domain, StringComparison.OrdinalIgnoreCase)) return false;
        var local = address[..at].ToLowerInvariant();
        if (!local.StartsWith(ReturnPathPrefix, StringComparison.Ordinal)) return false;
        var token = local[ReturnPathPrefix.Length..];
        var dash = token.IndexOf('-');
        if (dash <= 0 || !long.TryParse(token.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var id)) return false;
        var expected = Encode(Mac(ReturnPathPurpose, id));
        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(token[(dash + 1)..]))) return false;
        deliveryId = id;
        return true;
    }

    public string MessageId(long deliveryId, string domain) =>
        $"{deliveryId.ToString("x16", CultureInfo.InvariantCulture)}{Convert.ToHexString(Mac(MessageIdPurpose, deliveryId)).ToLowerInvariant()}@{domain}";

    /// <summary>The delivery a Message-ID (with or without angle brackets) was made for, when its MAC is right.</summary>
    public bool TryReadMessageId(string? messageId, out long deliveryId)
    {
        deliveryId = 0;
        var id = messageId?.Trim().Trim('<', '>');
        if (id is null || id.IndexOf('@') != 32) return false;
        if (!long.TryParse(id.AsSpan(0, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var candidate) || candidate <= 0) return false;
        var expected = Convert.ToHexString(Mac(MessageIdPurpose, candidate)).ToLowerInvariant();
        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(id.Substring(16, 16).ToLowerInvariant()))) return false;
        deliveryId = candidate;
        return true;
    }

    private byte[] Mac(byte purpose, long deliveryId)
    {
        Span<byte> payload = stackalloc byte[9];
        payload[0] = purpose;
        BinaryPrimitives.WriteInt64BigEndian(payload[1..], deliveryId);
        return HMACSHA256.HashData(_key, payload)[..8];
    }

    private static string Encode(byte[] bytes)
    {
        var text = new StringBuilder(13);
        int buffer = 0, bits = 0;
        foreach (var b in bytes)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                text.Append(Base32[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }
        }
        if (bits > 0) text.Append(Base32[(buffer << (5 - bits)) & 31]);
        return text.ToString();
    }
}
