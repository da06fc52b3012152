using System.Buffers;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using MimeKit;
using MimeKit.IO;

namespace Newsletter.Digests;

/// <summary>
/// The MIME body of one digest (multipart/alternative: text, then HTML, each UTF-8 in a 7-bit
/// transfer encoding) with everything shared by its readers encoded once. Encoding a reader's
/// message writes only their personal values and the few bytes where those meet the shared text;
/// the rest of the message refers to the bytes encoded here.
/// </summary>
/// <remarks>
/// Quoted-printable: every segment starts at the start of a line and ends with a hard line break
/// or a soft one (<c>=CRLF</c>, which decodes to nothing), so a shared segment encodes the same
/// way whatever came before it. Base64: a shared segment is encoded once for each of the three
/// alignments it can start at (0, 1 or 2 bytes left over from what came before); per message the
/// leftover bytes and the segment's first bytes make one joint quad, and a line may end early
/// (RFC 2045 caps lines at 76 characters, it does not fix their length). Either way the output has
/// no trailing or repeated white space on any line, so DKIM's relaxed and simple body
/// canonicalisations leave it unchanged and the body hash is the SHA-256 of these very bytes.
/// </remarks>
internal sealed class DigestBody
{
    private readonly string _boundary;
    private readonly byte[] _textHead;
    private readonly byte[] _htmlHead;
    private readonly byte[] _end;
    private readonly PartEncoder _text;
    private readonly PartEncoder _html;

    public DigestBody(DigestSegment[] text, ContentEncoding textEncoding, DigestSegment[] html, ContentEncoding htmlEncoding)
    {
        // "=_" cannot occur in quoted-printable or base64 output, so the boundary never appears in a part.
        _boundary = "=_" + Convert.ToHexString(RandomNumberGenerator.GetBytes(12)).ToLowerInvariant();
        _textHead = PartHead(_boundary, "plain", textEncoding, first: true);
        _htmlHead = PartHead(_boundary, "html", htmlEncoding, first: false);
        _end = Encoding.ASCII.GetBytes($"\r\n--{_boundary}--\r\n");
        _text = PartEncoder.Create(textEncoding, text);
        _html = PartEncoder.Create(htmlEncoding, html);
    }

    /// <summary>The message body for one reader.</summary>
    public EncodedBody Encode(PersonalValues values)
    {
        var writer = new BodyWriter();
        writer.Add(_textHead);
        _text.Write(writer, values, html: false);
        writer.Add(_htmlHead);
        _html.Write(writer, values, html: true);
        writer.Add(_end);
        var type = new ContentType("multipart", "alternative") { Boundary = _boundary };
        return new EncodedBody(type, writer.ToArray(), writer.Length);
    }

    private static byte[] PartHead(string boundary, string subtype, ContentEncoding encoding, bool first)
    {
        var name = encoding == ContentEncoding.Base64 ? "base64" : "quoted-printable";
        return Encoding.ASCII.GetBytes(
            $"{(first ? "" : "\r\n")}--{boundary}\r\nContent-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: {name}\r\n\r\n");
    }
}

/// <summary>A run of a rendered digest as UTF-8: shared by every reader, or one of their personal values.</summary>
internal readonly record struct DigestSegment(byte[] Utf8, PersonalValue? Value, int Index = 0);

/// <summary>One message's body, gathered as references to shared bytes and a few bytes of its own.</summary>
internal sealed class BodyWriter : IBufferWriter<byte>
{
    private readonly List<ReadOnlyMemory<byte>> _pieces = new(48);
    // Small personal encodings go into chunks that are never reallocated, so earlier slices stay valid.
    private byte[] _chunk = new byte[2048];
    private int _used;
    private int _start;

    public long Length { get; private set; }

    public void Add(ReadOnlyMemory<byte> bytes)
    {
        if (bytes.IsEmpty) return;
        Close();
        _pieces.Add(bytes);
        Length += bytes.Length;
    }

    /// <summary>Room for <paramref name="count"/> bytes of this message's own; call <see cref="Advance"/> after writing.</summary>
    public Span<byte> Reserve(int count)
    {
        if (_used + count > _chunk.Length)
        {
            Close();
            _chunk = new byte[Math.Max(2048, count)];
            _used = _start = 0;
        }
        return _chunk.AsSpan(_used, count);
    }

    public void Advance(int count)
    {
        _used += count;
        Length += count;
    }

    public void Write(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(Reserve(bytes.Length));
        Advance(bytes.Length);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Reserve(Math.Max(sizeHint, 16));
        return _chunk.AsSpan(_used);
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Reserve(Math.Max(sizeHint, 16));
        return _chunk.AsMemory(_used);
    }

    public ReadOnlyMemory<byte>[] ToArray()
    {
        Close();
        return _pieces.ToArray();
    }

    private void Close()
    {
        if (_used == _start) return;
        _pieces.Add(_chunk.AsMemory(_start, _used - _start));
        _start = _used;
    }
}

/// <summary>Encodes one text part of a digest: shared segments once, personal ones per message.</summary>
internal abstract class PartEncoder
{
    public static PartEncoder Create(ContentEncoding encoding, DigestSegment[] segments) => encoding switch
    {
        ContentEncoding.Base64 => new Base64PartEncoder(segments),
        ContentEncoding.QuotedPrintable => new QuotedPrintablePartEncoder(segments),
        _ => throw new ArgumentOutOfRangeException(nameof(encoding), encoding, "a digest part is base64 or quoted-printable"),
    };

    public abstract void Write(BodyWriter writer, PersonalValues values, bool html);
}

internal sealed class QuotedPrintablePartEncoder : PartEncoder
{
    private const int MaxLine = 76;
    private static readonly byte[] SoftBreak = "=\r\n"u8.ToArray();
    private static ReadOnlySpan<byte> Hex => "0123456789ABCDEF"u8;

    // Encoded shared segments; null where the segment is personal.
    private readonly byte[]?[] _encoded;
    private readonly DigestSegment[] _segments;

    public QuotedPrintablePartEncoder(DigestSegment[] segments)
    {
        _segments = segments;
        _encoded = new byte[]?[segments.Length];
        for (var i = 0; i < segments.Length; i++)
        {
            if (segments[i].Value is not null) continue;
            var output = new ArrayBufferWriter<byte>(segments[i].Utf8.Length + segments[i].Utf8.Length / 4 + 16);
            Encode(segments[i].Utf8, output, last: i == segments.Length - 1);
            _encoded[i] = output.WrittenSpan.ToArray();
        }
    }

    public override void Write(BodyWriter writer, PersonalValues values, bool html)
    {
        for (var i = 0; i < _segments.Length; i++)
        {
            if (_encoded[i] is { } shared) writer.Add(shared);
            else Encode(values.Get(_segments[i].Value!.Value, html, _segments[i].Index), writer, last: i == _segments.Length - 1);
        }
    }

    /// <summary>
    /// Quoted-printable from the start of a line: line ends become CRLF, a space is literal only
    /// when a visible character follows it, and the output ends at a line start (a soft break when
    /// the text did not end with one), except for the <paramref name="last"/> segment of a part,
    /// which ends at the boundary's line break (a soft break there would only add an empty line).
    /// </summary>
    internal static void Encode(ReadOnlySpan<byte> input, IBufferWriter<byte> output, bool last)
    {
        var column = 0;
        Span<byte> token = stackalloc byte[3];
        for (var i = 0; i < input.Length; i++)
        {
            var b = input[i];
            if (b == '\n' || (b == '\r' && i + 1 < input.Length && input[i + 1] == '\n'))
            {
                if (b == '\r') i++;
                output.Write("\r\n"u8);
                column = 0;
                continue;
            }
            int length;
            var next = i + 1 < input.Length ? input[i + 1] : (byte)'\n';
            if ((b is >= 33 and <= 126 && b != '=') || (b == ' ' && next is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')))
            {
                token[0] = b;
                length = 1;
            }
            else
            {
                token[0] = (byte)'=';
                token[1] = Hex[b >> 4];
                token[2] = Hex[b & 0xF];
                length = 3;
            }
            // Leave room for the '=' of a soft break.
            if (column + length > MaxLine - 1)
            {
                output.Write(SoftBreak);
                column = 0;
            }
            output.Write(token[..length]);
            column += length;
        }
        if (column > 0 && !last) output.Write(SoftBreak);
    }
}

internal sealed class Base64PartEncoder : PartEncoder
{
    private const int MaxLine = 76;
    private static ReadOnlySpan<byte> Alphabet => "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"u8;

    private readonly DigestSegment[] _segments;
    // For each shared segment, its encoding for each number of bytes (0-2) left over before it.
    private readonly Alignment[]?[] _alignments;

    private sealed record Alignment(int Skip, byte[] Text, int EndColumn, byte[] Tail);

    public Base64PartEncoder(DigestSegment[] segments)
    {
        _segments = (DigestSegment[])segments.Clone();
        _alignments = new Alignment[]?[segments.Length];
        for (var i = 0; i < segments.Length; i++)
        {
            if (segments[i].Value is not null) continue;
            // Text is encoded in its canonical form, with CRLF line ends (RFC 2049).
            var bytes = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(segments[i].Utf8).ReplaceLineEndings("\r\n"));
            _segments[i] = segments[i] with { Utf8 = bytes };
            _alignments[i] = new Alignment[3];
            for (var carry = 0; carry < 3; carry++)
            {
                var skip = Math.Min((3 - carry) % 3, bytes.Length);
                var whole = (bytes.Length - skip) / 3 * 3;
                var text = Encoding.ASCII.GetBytes(Convert.ToBase64String(bytes, skip, whole, Base64FormattingOptions.InsertLineBreaks));
                var lastBreak = Array.LastIndexOf(text, (byte)'\n');
                _alignments[i]![carry] = new Alignment(skip, text, text.Length - (lastBreak + 1), bytes[(skip + whole)..]);
            }
        }
    }

    public override void Write(BodyWriter writer, PersonalValues values, bool html)
    {
        var state = new State(writer);
        for (var i = 0; i < _segments.Length; i++)
        {
            if (_alignments[i] is { } alignments)
            {
                var a = alignments[state.Carry];
                state.Append(_segments[i].Utf8.AsSpan(0, a.Skip));
                if (a.Text.Length > 0)
                {
                    if (state.Carry != 0) throw new InvalidOperationException("base64 joint left bytes over");
                    state.AddLines(a.Text, a.EndColumn);
                }
                state.Append(a.Tail);
            }
            else
            {
                state.Append(values.Get(_segments[i].Value!.Value, html, _segments[i].Index));
            }
        }
        state.Finish();
    }

    private struct State(BodyWriter writer)
    {
        private int _b0;
        private int _b1;
        private int _column;

        public int Carry { get; private set; }

        public void Append(ReadOnlySpan<byte> bytes)
        {
            foreach (var b in bytes)
            {
                switch (Carry)
                {
                    case 0: _b0 = b; Carry = 1; break;
                    case 1: _b1 = b; Carry = 2; break;
                    default:
                        Quad(_b0, _b1, b, 3);
                        Carry = 0;
                        break;
                }
            }
        }

        public void AddLines(byte[] text, int endColumn)
        {
            if (_column > 0) writer.Write("\r\n"u8);
            writer.Add(text);
            _column = endColumn;
        }

        public void Finish()
        {
            if (Carry == 1) Quad(_b0, 0, 0, 1);
            else if (Carry == 2) Quad(_b0, _b1, 0, 2);
            Carry = 0;
        }

        private void Quad(int a, int b, int c, int count)
        {
            if (_column + 4 > MaxLine)
            {
                writer.Write("\r\n"u8);
                _column = 0;
            }
            var quad = writer.Reserve(4);
            quad[0] = Alphabet[a >> 2];
            quad[1] = Alphabet[((a & 3) << 4) | (b >> 4)];
            quad[2] = count > 1 ? Alphabet[((b & 15) << 2) | (c >> 6)] : (byte)'=';
            quad[3] = count > 2 ? Alphabet[c & 63] : (byte)'=';
            writer.Advance(4);
            _column += 4;
        }
    }
}

/// <summary>
/// A multipart body already encoded for the wire (see <see cref="DigestBody"/>): written as it is,
/// its size known without writing it, and its SHA-256 taken over the bytes themselves.
/// </summary>
public sealed class EncodedBody : MimeEntity
{
    private readonly ReadOnlyMemory<byte>[] _pieces;

    internal EncodedBody(ContentType type, ReadOnlyMemory<byte>[] pieces, long length) : base(type)
    {
        _pieces = pieces;
        Length = length;
    }

    /// <summary>The body's size in bytes, CRLF line ends.</summary>
    public long Length { get; }

    /// <summary>Nothing to do: the parts are 7-bit with lines of at most 76 characters.</summary>
    public override void Prepare(EncodingConstraint constraint, int maxLineLength = 78) { }

    /// <summary>SHA-256 of the body, which is its DKIM body hash under either canonicalisation.</summary>
    public byte[] Sha256()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var piece in _pieces) hash.AppendData(piece.Span);
        return hash.GetHashAndReset();
    }

    /// <summary>The size of <paramref name="message"/> as MimeKit writes it with CRLF line ends.</summary>
    public static long MessageSize(MimeMessage message, EncodedBody body)
    {
        long size = 0;
        foreach (var header in message.Headers) size += HeaderSize(header);
        foreach (var header in body.Headers) size += HeaderSize(header);
        return size + 2 + body.Length;
    }

    // Name, colon and value, with each bare LF of the value written as CRLF.
    private static long HeaderSize(Header header)
    {
        var value = header.RawValue;
        long size = header.RawField.Length + 1 + value.Length;
        for (var i = 0; i < value.Length; i++)
            if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r')) size++;
        return size;
    }

    public override void WriteTo(FormatOptions options, Stream stream, bool contentOnly, CancellationToken cancellationToken = default)
    {
        base.WriteTo(options, stream, contentOnly, cancellationToken);
        if (!contentOnly) stream.Write(NewLine(options));
        using var target = Target(options, stream);
        foreach (var piece in _pieces)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var segment = Segment(piece);
            target.Stream.Write(segment.Array!, segment.Offset, segment.Count);
        }
        target.Stream.Flush();
    }

    public override async Task WriteToAsync(FormatOptions options, Stream stream, bool contentOnly, CancellationToken cancellationToken = default)
    {
        await base.WriteToAsync(options, stream, contentOnly, cancellationToken);
        if (!contentOnly) await stream.WriteAsync(NewLine(options).ToArray(), cancellationToken);
        using var target = Target(options, stream);
        foreach (var piece in _pieces)
        {
            var segment = Segment(piece);
            await target.Stream.WriteAsync(segment.Array!, segment.Offset, segment.Count, cancellationToken);
        }
        await target.Stream.FlushAsync(cancellationToken);
    }

    private static ReadOnlySpan<byte> NewLine(FormatOptions options) => options.NewLineFormat == NewLineFormat.Dos ? "\r\n"u8 : "\n"u8;

    private static ArraySegment<byte> Segment(ReadOnlyMemory<byte> piece) =>
        MemoryMarshal.TryGetArray(piece, out var segment) ? segment : new ArraySegment<byte>(piece.ToArray());

    // The bytes have CRLF line ends; anything else goes through MimeKit's line-end filter.
    private static Output Target(FormatOptions options, Stream stream)
    {
        if (options.NewLineFormat == NewLineFormat.Dos) return new Output(stream, null);
        var filtered = new FilteredStream(stream);
        filtered.Add(new MimeKit.IO.Filters.Dos2UnixFilter());
        return new Output(filtered, filtered);
    }

    private readonly record struct Output(Stream Stream, IDisposable? Owned) : IDisposable
    {
        public void Dispose() => Owned?.Dispose();
    }
}
