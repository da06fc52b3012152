using System.Diagnostics;

namespace Newsletter.Testing;

/// <summary>
/// A private Postfix for the tests and the benchmarks: its own main.cf, master.cf and queue in a
/// folder, the master process in the foreground listening on a loopback port. Needs Debian's
/// <c>postfix</c> package and root (Postfix drops to its <c>postfix</c> user itself).
/// </summary>
public static class PostfixInstance
{
    public const string Master = "/usr/lib/postfix/sbin/master";

    private static readonly string[] PrivateQueues = ["incoming", "active", "deferred", "defer", "bounce", "flush", "hold", "saved", "trace", "corrupt", "private"];

    /// <summary>Writes the configuration and the queue layout under <paramref name="directory"/> and starts the master.</summary>
    /// <param name="mainCf">Lines added to main.cf (relay domains, transports, logging, limits).</param>
    /// <param name="services">Lines added to master.cf beyond the SMTP listener and the queue's own services.</param>
    public static Process Start(string directory, int port, string hostname, string mainCf, string services = "")
    {
        var queue = Path.Combine(directory, "queue");
        var data = Path.Combine(directory, "data");
        Directory.CreateDirectory(data);
        File.WriteAllText(Path.Combine(directory, "main.cf"), $"""
            compatibility_level = 3.6
            queue_directory = {queue}
            data_directory = {data}
            mail_owner = postfix
            setgid_group = postdrop
            inet_interfaces = 127.0.0.1
            inet_protocols = ipv4
            myhostname = {hostname}
            mydestination =
            mynetworks = 127.0.0.0/8
            smtpd_relay_restrictions = permit_mynetworks, reject
            {mainCf}
            """);
        File.WriteAllText(Path.Combine(directory, "master.cf"), $"""
            127.0.0.1:{port} inet n - n - - smtpd
            postlog unix-dgram n - n - 1 postlogd
            cleanup unix n - n - 0 cleanup
            qmgr unix n - n 300 1 qmgr
            rewrite unix - - n - - trivial-rewrite
            bounce unix - - n - 0 bounce
            defer unix - - n - 0 bounce
            trace unix - - n - 0 bounce
            verify unix - - n - 1 verify
            flush unix n - n 1000? 0 flush
            proxymap unix - - n - - proxymap
            smtp unix - - n - - smtp
            relay unix - - n - - smtp
            discard unix - - n - - discard
            error unix - - n - - error
            retry unix - - n - - error
            anvil unix - - n - 1 anvil
            scache unix - - n - 1 scache
            showq unix n - n - - showq
            pickup unix n - n 60 1 pickup
            {services}
            """);
        // The queue layout `postfix start` would create: owned by postfix, public by postdrop.
        Directory.CreateDirectory(Path.Combine(queue, "pid"));
        foreach (var name in PrivateQueues.Append("public").Append("maildrop"))
            Directory.CreateDirectory(Path.Combine(queue, name));
        Run("chown", "-R", "postfix", queue, data);
        Run("chown", "root", Path.Combine(queue, "pid"));
        Run("chgrp", "postdrop", Path.Combine(queue, "public"), Path.Combine(queue, "maildrop"));
        Run("chmod", ["700", .. PrivateQueues.Select(n => Path.Combine(queue, n))]);
        Run("chmod", "710", Path.Combine(queue, "public"));
        Run("chmod", "1730", Path.Combine(queue, "maildrop"));
        return Process.Start(new ProcessStartInfo(Master, ["-c", directory, "-d"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
    }

    private static void Run(string tool, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(tool, arguments) { RedirectStandardError = true })!;
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{tool} {string.Join(' ', arguments)}: {process.StandardError.ReadToEnd()}");
    }
}
