using System.Net;
using System.Net.Sockets;

namespace Newsletter.Testing;

/// <summary>
/// HTTP clients that connect from a chosen loopback address (127.0.0.x), so a test or a benchmark
/// can be many clients to a per-address limit; they never follow redirects.
/// </summary>
public static class LoopbackClient
{
    public static HttpClient From(Uri baseAddress, string address, string userAgent, int connections = 16) => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        MaxConnectionsPerServer = connections,
        UseCookies = false,
        ConnectCallback = async (context, ct) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            socket.Bind(new IPEndPoint(IPAddress.Parse(address), 0));
            await socket.ConnectAsync(context.DnsEndPoint, ct);
            return new NetworkStream(socket, ownsSocket: true);
        },
    }) { BaseAddress = baseAddress, DefaultRequestHeaders = { { "User-Agent", userAgent } } };
}
