using System.Net.Sockets;
using System.Text.RegularExpressions;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using Newsletter.Configuration;
using Newsletter.Digests;

namespace Newsletter.Delivery;

/// <summary>
/// SMTP through MailKit. Each lane owns one <see cref="SmtpClient"/> (it is not thread-safe) and
/// reuses its connection for many messages, probing an idle one with NOOP and reconnecting after
/// a drop or a 421. Failures are classified by the SMTP taxonomy into a <see cref="SendOutcome"/>.
/// </summary>
public sealed partial class SmtpTransport(SmtpOptions options, DeliveryMetrics? metrics = null) : IMailTransport
{
    private static readonly TimeSpan IdleProbeAfter = TimeSpan.FromSeconds(10);

    public string Destination => $"smtp://{options.Host}:{options.Port}";

    public IMailLane OpenLane() => new Lane(options, metrics);

    /// <summary>Classifies a failed attempt. <paramref name="dataEnded"/>: the end-of-DATA marker had been written.</summary>
    public static SendOutcome Classify(Exception e, bool dataEnded)
    {
        switch (e)
        {
            case SmtpCommandException c:
            {
                var code = (int)c.StatusCode;
                var reply = $"{code} {c.Message}";
                var enhanced = EnhancedCode().Match(c.Message) is { Success: true } m ? m.Value : "";
                if (code == 421) return new(SendResult.Retry, reply) { ConnectionFailure = true };
                if (code is >= 400 and < 500) return new(SendResult.Retry, reply);
                if (enhanced.StartsWith("5.7.", StringComparison.Ordinal)) return new(SendResult.PauseRun, reply);
                return c.ErrorCode switch
                {
                    SmtpErrorCode.RecipientNotAccepted when enhanced.Length == 0 || enhanced.StartsWith("5.1.", StringComparison.Ordinal) || enhanced == "5.2.1"
                        => new(SendResult.Bounced, reply),
                    SmtpErrorCode.RecipientNotAccepted or SmtpErrorCode.MessageNotAccepted => new(SendResult.Failed, reply),
                    // A refused sender, or a server that refuses service: nothing any recipient can fix.
                    _ => new(SendResult.PauseRun, reply),
                };
            }
            case AuthenticationException or ServiceNotAuthenticatedException:
                return new(SendResult.PauseRun, "SMTP authentication failed: " + e.Message);
            case SslHandshakeException:
                return new(SendResult.PauseRun, "TLS failed: " + e.Message);
            case SmtpProtocolException or IOException or SocketException or ServiceNotConnectedException or TimeoutException or OperationCanceledException:
                return dataEnded
                    ? new(SendResult.Uncertain, "connection lost after the end of DATA: " + e.Message)
                    : new(SendResult.Retry, "connection failed: " + e.Message) { ConnectionFailure = true };
            default:
                return new(SendResult.Retry, e.GetType().Name + ": " + e.Message);
        }
    }

    [GeneratedRegex(@"\b[245]\.\d{1,3}\.\d{1,3}\b")]
    private static partial Regex EnhancedCode();

    /// <summary>
    /// The connection's stream, gathering MailKit's writes (4 KB blocks for a message body) until
    /// it flushes, which it does after a command, a pipelined group of commands, or the end of
    /// DATA: a digest goes out in one or two sends instead of ten or more. Reads, timeouts and
    /// closing are the network stream's.
    /// </summary>
    private sealed class CoalescingStream(NetworkStream inner) : Stream
    {
        private const int Capacity = 128 * 1024;
        private byte[] _buffer = new byte[16 * 1024];
        private int _count;

        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        // The socket's own timeouts hold for blocking calls only: asynchronous ones get them here.
        public override bool CanTimeout => true;
        public override int ReadTimeout { get => inner.ReadTimeout; set => inner.ReadTimeout = value; }
        public override int WriteTimeout { get => inner.WriteTimeout; set => inner.WriteTimeout = value; }

        private async ValueTask<T> WithinAsync<T>(int timeout, Func<CancellationToken, ValueTask<T>> io, CancellationToken ct)
        {
            if (timeout <= 0) return await io(ct);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
            limit.CancelAfter(timeout);
            try
            {
                return await io(limit.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new TimeoutException($"no answer within {timeout} ms");
            }
        }
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        // Whoever reads waits for an answer to what it wrote: that goes out first.
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_count > 0) Flush();
            return inner.Read(buffer);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            if (_count > 0) await FlushAsync(ct);
            return await WithinAsync(inner.ReadTimeout, t => inner.ReadAsync(buffer, t), ct);
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> data)
        {
            if (_count + data.Length > Capacity) Flush();
            if (data.Length > Capacity) { inner.Write(data); return; }
            Append(data);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
        {
            if (_count + data.Length > Capacity) await FlushAsync(ct);
            if (data.Length > Capacity) { await WithinAsync(inner.WriteTimeout, async t => { await inner.WriteAsync(data, t); return 0; }, ct); return; }
            Append(data.Span);
        }

        private void Append(ReadOnlySpan<byte> data)
        {
            if (_count + data.Length > _buffer.Length) Array.Resize(ref _buffer, Math.Min(Capacity, Math.Max(_buffer.Length * 2, _count + data.Length)));
            data.CopyTo(_buffer.AsSpan(_count));
            _count += data.Length;
        }

        public override void Flush()
        {
            if (_count > 0) inner.Write(_buffer, 0, _count);
            _count = 0;
            inner.Flush();
        }

        public override async Task FlushAsync(CancellationToken ct)
        {
            if (_count > 0)
            {
                var count = _count;
                _count = 0;
                await WithinAsync(inner.WriteTimeout, async t => { await inner.WriteAsync(_buffer.AsMemory(0, count), t); return 0; }, ct);
            }
            await inner.FlushAsync(ct);
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }

    /// <summary>
    /// MailKit's client, minus the measuring of every message: when the server offers SIZE,
    /// MailKit writes the whole message out once only to count its bytes for MAIL FROM's SIZE=
    /// parameter. A digest's size is known without writing it (<see cref="EncodedBody"/>); any
    /// other message declares no size (-1 tells MailKit to leave it out: the parameter is optional,
    /// RFC 1870, and a server still refuses an oversized message after DATA). CHUNKING, which needs
    /// the size, is never used (see <see cref="DataEndTracker"/>).
    /// </summary>
    private sealed class LaneClient(IProtocolLogger logger) : SmtpClient(logger)
    {
        protected override long GetSize(FormatOptions options, MimeMessage message, CancellationToken cancellationToken) => KnownSize(message);

        protected override Task<long> GetSizeAsync(FormatOptions options, MimeMessage message, CancellationToken cancellationToken) => Task.FromResult(KnownSize(message));

        private static long KnownSize(MimeMessage message) => message.Body is EncodedBody body ? EncodedBody.MessageSize(message, body) : -1;
    }

    private sealed class Lane(SmtpOptions options, DeliveryMetrics? metrics) : IMailLane
    {
        private readonly DataEndTracker _tracker = new();
        private SmtpClient? _client;
        private DateTime _lastUsed;

        public async Task<SendOutcome> SendAsync(MimeMessage message, MailboxAddress envelopeSender, MailboxAddress recipient, CancellationToken ct = default)
        {
            var reused = _client is { IsConnected: true };
            var outcome = await AttemptAsync(message, envelopeSender, recipient, ct);
            // A reused connection that broke before the end of DATA (the server closed it while
            // idle, or said 421): reconnect and try this message once more.
            if (reused && outcome.ConnectionFailure && !ct.IsCancellationRequested)
                outcome = await AttemptAsync(message, envelopeSender, recipient, ct);
            return outcome;
        }

        private async Task<SendOutcome> AttemptAsync(MimeMessage message, MailboxAddress envelopeSender, MailboxAddress recipient, CancellationToken ct)
        {
            _tracker.Reset();
            try
            {
                var client = await ConnectedAsync(ct);
                _tracker.Reset();
                // Headers stay 7-bit even if the server offers SMTPUTF8 (the next hop may not).
                var format = FormatOptions.Default.Clone();
                format.International = false;
                await client.SendAsync(format, message, envelopeSender, [recipient], ct);
                _lastUsed = DateTime.UtcNow;
                return SendOutcome.Sent;
            }
            catch (Exception e) when (!ct.IsCancellationRequested || e is not OperationCanceledException)
            {
                var outcome = Classify(e, _tracker.DataEnded);
                // After any failure the connection's state is unknown: start the next message on a fresh one.
                await DropAsync();
                return outcome;
            }
        }

        private async Task<SmtpClient> ConnectedAsync(CancellationToken ct)
        {
            if (_client is { IsConnected: true } client)
            {
                if (DateTime.UtcNow - _lastUsed < IdleProbeAfter) return client;
                try
                {
                    await client.NoOpAsync(ct);
                    return client;
                }
                catch (Exception e) when (e is IOException or SmtpProtocolException or SmtpCommandException or ServiceNotConnectedException)
                {
                    await DropAsync(); // the server closed an idle connection: reconnect
                }
            }
            client = new LaneClient(_tracker) { Timeout = options.TimeoutSeconds * 1000 };
            if (!string.IsNullOrWhiteSpace(options.LocalDomain)) client.LocalDomain = options.LocalDomain;
            _client = client;
            var security = options.Security switch
            {
                SmtpSecurity.StartTls => SecureSocketOptions.StartTls,
                SmtpSecurity.SslOnConnect => SecureSocketOptions.SslOnConnect,
                _ => SecureSocketOptions.None,
            };
            // Our own socket, with Nagle off: the end-of-DATA marker is a small write after the
            // body, and Nagle would hold it for the server's delayed ACK (~40 ms a message).
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                connectTimeout.CancelAfter(TimeSpan.FromSeconds(options.TimeoutSeconds));
                await socket.ConnectAsync(options.Host!, options.Port, connectTimeout.Token);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
            await client.ConnectAsync(new CoalescingStream(new NetworkStream(socket, ownsSocket: true)), options.Host!, options.Port, security, ct);
            metrics?.Connection();
            // BDAT would hide the end of the message from the tracker; plain DATA it is.
            client.Capabilities &= ~SmtpCapabilities.Chunking;
            if (!string.IsNullOrEmpty(options.Username))
                await client.AuthenticateAsync(options.Username, options.Password ?? "", ct);
            _lastUsed = DateTime.UtcNow;
            return client;
        }

        private async Task DropAsync()
        {
            if (_client is null) return;
            var client = _client;
            _client = null;
            try
            {
                if (client.IsConnected)
                {
                    using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                    await client.DisconnectAsync(quit: true, quick.Token);
                }
            }
            catch (Exception e) when (e is IOException or SmtpProtocolException or SmtpCommandException or OperationCanceledException or SocketException) { }
            client.Dispose();
        }

        public async ValueTask DisposeAsync() => await DropAsync();
    }

    /// <summary>
    /// Watches what the client writes (in plain text, before any TLS) for the end-of-DATA marker
    /// CRLF.CRLF: after it the server may have queued the message even if its reply is lost.
    /// </summary>
    private sealed class DataEndTracker : IProtocolLogger
    {
        private readonly byte[] _tail = new byte[5];
        private int _filled;

        public bool DataEnded { get; private set; }

        public IAuthenticationSecretDetector? AuthenticationSecretDetector { get; set; }

        public void Reset()
        {
            DataEnded = false;
            _filled = 0;
        }

        public void LogClient(byte[] buffer, int offset, int count)
        {
            if (count == 0) return;
            // Only the last five bytes written so far matter.
            var take = Math.Min(5, count);
            var keep = Math.Min(5 - take, _filled);
            Array.Copy(_tail, 5 - keep, _tail, 5 - take - keep, keep);
            Array.Copy(buffer, offset + count - take, _tail, 5 - take, take);
            _filled = keep + take;
            // The marker is the last thing the client writes before it waits for the final reply.
            DataEnded = _filled == 5 && _tail is [(byte)'\r', (byte)'\n', (byte)'.', (byte)'\r', (byte)'\n'];
        }

        public void LogServer(byte[] buffer, int offset, int count) { }

        public void LogConnect(Uri uri) { }

        public void Dispose() { }
    }
}
