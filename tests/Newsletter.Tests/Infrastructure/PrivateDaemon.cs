using System.Diagnostics;

namespace Newsletter.Tests.Infrastructure;

/// <summary>What the private Postfix and Dovecot share: preparing their folders and waiting for them to listen.</summary>
internal static class PrivateDaemon
{
    public static void Run(string tool, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(tool, arguments) { RedirectStandardError = true })!;
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{tool} {string.Join(' ', arguments)}: {process.StandardError.ReadToEnd()}");
    }

    /// <summary>Returns once every port accepts connections; throws with the daemon's log when it exits or 20 s pass.</summary>
    public static void WaitForPorts(Process daemon, string name, Func<string> log, params int[] ports)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        foreach (var port in ports)
            while (true)
            {
                try
                {
                    using var probe = new System.Net.Sockets.TcpClient();
                    probe.Connect("127.0.0.1", port);
                    break;
                }
                catch (System.Net.Sockets.SocketException) when (DateTime.UtcNow < deadline && !daemon.HasExited)
                {
                    Thread.Sleep(100);
                }
                catch (System.Net.Sockets.SocketException)
                {
                    throw new InvalidOperationException($"{name} did not start: {(daemon.HasExited ? daemon.StandardError.ReadToEnd() : "no answer")}\n{log()}");
                }
            }
    }

    /// <summary>Stops the daemon and removes its folder.</summary>
    public static void Stop(Process daemon, string directory)
    {
        try { daemon.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        daemon.WaitForExit(5000);
        try { Directory.Delete(directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        daemon.Dispose();
    }

    public static string ReadLog(string path) => File.Exists(path) ? File.ReadAllText(path) : "";
}
