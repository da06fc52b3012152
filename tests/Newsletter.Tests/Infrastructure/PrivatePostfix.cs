using System.Diagnostics;

namespace Newsletter.Tests.Infrastructure;

/// <summary>
/// A private Postfix: its own configuration and queue in a temporary folder, the master process in
/// the foreground, listening on a loopback port; killed and removed on dispose. Needs Debian's
/// <c>postfix</c> package (installed by <c>.ci/install</c>) and root (Postfix drops to its
/// <c>postfix</c> user itself).
/// </summary>
public sealed class PrivatePostfix : IDisposable
{
    private const string Master = "/usr/lib/postfix/sbin/master";
    private readonly Process _master;

    public string Directory { get; }

    public int Port { get; }

    /// <param name="mainCf">Lines added to main.cf (relay domains, transports, ...).</param>
    /// <param name="services">Lines added to master.cf beyond the SMTP listener and the queue's own services.</param>
    public PrivatePostfix(string mainCf, string services = "")
    {
        Assert.True(File.Exists(Master), $"{Master} is missing: install Debian's postfix package (.ci/install does)");
        Port = LoopbackPort.Free();
        Directory = Path.Combine(Path.GetTempPath(), $"postfix-{Guid.NewGuid():N}");
        var queue = Path.Combine(Directory, "queue");
        var data = Path.Combine(Directory, "data");
        System.IO.Directory.CreateDirectory(data);
        File.WriteAllText(Path.Combine(Directory, "main.cf"), $"""
            compatibility_level = 3.6
            queue_directory = {queue}
            data_directory = {data}
            mail_owner = postfix
            setgid_group = postdrop
            inet_interfaces = 127.0.0.1
            inet_protocols = ipv4
            myhostname = mta.localdomain
            mydestination =
            mynetworks = 127.0.0.0/8
            smtpd_relay_restrictions = permit_mynetworks, reject
            smtp_dns_support_level = disabled
            smtpd_peername_lookup = no
            maillog_file_prefixes = {Directory}
            maillog_file = {Path.Combine(Directory, "maillog")}
            {mainCf}
            """);
        File.WriteAllText(Path.Combine(Directory, "master.cf"), $"""
            127.0.0.1:{Port} inet n - n - - smtpd
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
        System.IO.Directory.CreateDirectory(Path.Combine(queue, "pid"));
        foreach (var name in new[] { "incoming", "active", "deferred", "defer", "bounce", "flush", "hold", "saved", "trace", "corrupt", "private", "public", "maildrop" })
            System.IO.Directory.CreateDirectory(Path.Combine(queue, name));
        PrivateDaemon.Run("chown", "-R", "postfix", queue, data);
        PrivateDaemon.Run("chown", "root", Path.Combine(queue, "pid"));
        PrivateDaemon.Run("chgrp", "postdrop", Path.Combine(queue, "public"), Path.Combine(queue, "maildrop"));
        PrivateDaemon.Run("chmod", ["700", .. new[] { "incoming", "active", "deferred", "defer", "bounce", "flush", "hold", "saved", "trace", "corrupt", "private" }.Select(n => Path.Combine(queue, n))]);
        PrivateDaemon.Run("chmod", "710", Path.Combine(queue, "public"));
        PrivateDaemon.Run("chmod", "1730", Path.Combine(queue, "maildrop"));
        _master = Process.Start(new ProcessStartInfo(Master, ["-c", Directory, "-d"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        PrivateDaemon.WaitForPorts(_master, "Postfix", Log, Port);
    }

    /// <summary>What Postfix logged (for failure messages).</summary>
    public string Log() => PrivateDaemon.ReadLog(Path.Combine(Directory, "maillog"));

    public void Dispose() => PrivateDaemon.Stop(_master, Directory);
}
