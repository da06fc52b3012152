using System.Diagnostics;

namespace Newsletter.Tests.Infrastructure;

/// <summary>
/// A private Postfix (<see cref="Newsletter.Testing.PostfixInstance"/>) in a temporary folder that
/// logs to a file there; killed and removed on dispose.
/// </summary>
public sealed class PrivatePostfix : IDisposable
{
    private readonly Process _master;

    public string Directory { get; }

    public int Port { get; }

    /// <param name="mainCf">Lines added to main.cf (relay domains, transports, ...).</param>
    /// <param name="services">Lines added to master.cf beyond the SMTP listener and the queue's own services.</param>
    public PrivatePostfix(string mainCf, string services = "")
    {
        Assert.True(File.Exists(Newsletter.Testing.PostfixInstance.Master), $"{Newsletter.Testing.PostfixInstance.Master} is missing: install Debian's postfix package (.ci/install does)");
        Port = LoopbackPort.Free();
        Directory = Path.Combine(Path.GetTempPath(), $"postfix-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(Directory);
        _master = Newsletter.Testing.PostfixInstance.Start(Directory, Port, "mta.localdomain", $"""
            smtp_dns_support_level = disabled
            smtpd_peername_lookup = no
            maillog_file_prefixes = {Directory}
            maillog_file = {Path.Combine(Directory, "maillog")}
            {mainCf}
            """, services);
        PrivateDaemon.WaitForPorts(_master, "Postfix", Log, Port);
    }

    /// <summary>What Postfix logged (for failure messages).</summary>
    public string Log() => PrivateDaemon.ReadLog(Path.Combine(Directory, "maillog"));

    public void Dispose() => PrivateDaemon.Stop(_master, Directory);
}
