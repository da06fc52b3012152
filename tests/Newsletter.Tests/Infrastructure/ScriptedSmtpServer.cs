using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Newsletter.Tests.Infrastructure;

/// <summary>
/// A scripted SMTP peer on loopback for faults a well-behaved server never produces: replies
/// chosen per recipient and attempt, connections dropped in the middle of DATA or after it, a
/// server that stalls, a failing AUTH. It speaks just enough SMTP for MailKit.
/// </summary>
public sealed class ScriptedSmtpServer : IAsyncDisposable
{
    public enum DataAction { Accept, Reply, DropMidData, DropAfterData, Stall }

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly ConcurrentDictionary<string, int> _attempts = new();

    public ScriptedSmtpServer()
    {
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>The greeting; a 4xx or 5xx greeting is followed by closing the connection.</summary>
    public Func<string> Greeting { get; set; } = () => "220 scripted ESMTP";

    /// <summary>Offers PIPELINING in the EHLO reply (the client may then send MAIL, RCPT and DATA together).</summary>
    public bool Pipelining { get; set; }

    /// <summary>Offers SIZE (RFC 1870) in the EHLO reply, as Postfix does.</summary>
    public bool Size { get; set; }

    /// <summary>Offers STARTTLS, answers it with 220 and then speaks something that is not TLS.</summary>
    public bool BrokenStartTls { get; set; }

    /// <summary>Commands as received, in order (the verbs only).</summary>
    public ConcurrentQueue<string> Verbs { get; } = new();

    /// <summary>The reply to AUTH; null: AUTH is not offered.</summary>
    public string? AuthReply { get; set; }

    public Func<string, string> MailFromReply { get; set; } = _ => "250 2.1.0 OK";

    /// <summary>The reply to RCPT TO, by recipient and attempt (1 for the first).</summary>
    public Func<string, int, string> RcptReply { get; set; } = (_, _) => "250 2.1.5 OK";

    /// <summary>What happens with the message data, by recipient and attempt; with <see cref="DataAction.Reply"/>, <see cref="DataReply"/> answers.</summary>
    public Func<string, int, DataAction> Data { get; set; } = (_, _) => DataAction.Accept;

    public Func<string, int, string> DataReply { get; set; } = (_, _) => "250 2.0.0 queued";

    /// <summary>While true, every connection is closed at once, before any greeting (a server that is down).</summary>
    public volatile bool Down;

    /// <summary>How long the server takes to answer the end of DATA (a slow server).</summary>
    public TimeSpan DataDelay { get; set; } = TimeSpan.Zero;

    /// <summary>Close each connection after this many accepted messages (an idle or tired server).</summary>
    public int? CloseAfterMessages { get; set; }

    /// <summary>Recipients of the messages accepted, in order.</summary>
    public ConcurrentQueue<string> Accepted { get; } = new();

    /// <summary>The size of each message received in DATA, in bytes (CRLF line ends, dot-stuffing undone).</summary>
    public ConcurrentQueue<long> MessageSizes { get; } = new();

    public int Connections;

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            Interlocked.Increment(ref Connections);
            _ = Task.Run(() => SessionAsync(client));
        }
    }

    private async Task SessionAsync(TcpClient tcp)
    {
        using var _ = tcp;
        var stream = tcp.GetStream();
        var reader = new StreamReader(stream, Encoding.ASCII);
        async Task Say(string line) => await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"));
        try
        {
            if (Down)
            {
                tcp.Client.LingerState = new LingerOption(true, 0); // reset, like a refused connection
                return;
            }
            var greeting = Greeting();
            await Say(greeting);
            if (!greeting.StartsWith("220", StringComparison.Ordinal)) return;
            string rcpt = "";
            var accepted = 0;
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                var verb = line.Split(' ', 2)[0].ToUpperInvariant();
                Verbs.Enqueue(verb);
                switch (verb)
                {
                    case "EHLO":
                        await Say("250-scripted");
                        if (AuthReply is not null) await Say("250-AUTH PLAIN LOGIN");
                        if (Pipelining) await Say("250-PIPELINING");
                        if (Size) await Say("250-SIZE 10240000");
                        if (BrokenStartTls) await Say("250-STARTTLS");
                        await Say("250 8BITMIME");
                        break;
                    case "HELO": await Say("250 scripted"); break;
                    case "STARTTLS":
                        await Say("220 2.0.0 ready to start TLS");
                        await Say("this is not a TLS server hello");
                        await Say("nor is this");
                        return;
                    case "AUTH": await Say(AuthReply ?? "502 5.5.1 not offered"); break;
                    case "MAIL": await Say(MailFromReply(line)); break;
                    case "RCPT":
                        rcpt = line[(line.IndexOf('<') + 1)..line.IndexOf('>')];
                        await Say(RcptReply(rcpt, _attempts.AddOrUpdate(rcpt, 1, (_, n) => n + 1)));
                        break;
                    case "DATA":
                    {
                        var attempt = _attempts.GetValueOrDefault(rcpt, 1);
                        var action = Data(rcpt, attempt);
                        // Dropped before the client could finish the message: it never wrote the end-of-DATA marker.
                        if (action == DataAction.DropMidData) return;
                        await Say("354 go ahead");
                        long size = 0;
                        while (await reader.ReadLineAsync(_stop.Token) is { } body && body != ".")
                            size += (body.StartsWith('.') ? body.Length - 1 : body.Length) + 2;
                        MessageSizes.Enqueue(size);
                        switch (action)
                        {
                            case DataAction.DropAfterData: return;
                            case DataAction.Stall: await Task.Delay(Timeout.Infinite, _stop.Token); return;
                            case DataAction.Reply: await Say(DataReply(rcpt, attempt)); break;
                            default:
                                if (DataDelay > TimeSpan.Zero) await Task.Delay(DataDelay, _stop.Token);
                                Accepted.Enqueue(rcpt);
                                await Say("250 2.0.0 queued");
                                if (CloseAfterMessages is { } max && ++accepted >= max) return;
                                break;
                        }
                        break;
                    }
                    case "RSET": await Say("250 2.0.0 OK"); break;
                    case "NOOP": await Say("250 2.0.0 OK"); break;
                    case "QUIT": await Say("221 2.0.0 bye"); return;
                    default: await Say("500 5.5.2 unknown command"); break;
                }
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or ObjectDisposedException) { }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try { await _accepting; } catch (Exception) { }
    }
}
