using System.Diagnostics;

namespace Newsletter.Tests.Infrastructure;

/// <summary>
/// A private Dovecot (IMAP and POP3 on loopback ports, one maildir user, plain-text login without
/// TLS) with its configuration, state and mail in a temporary folder; stopped and removed on
/// dispose. Needs Debian's <c>dovecot-imapd</c> and <c>dovecot-pop3d</c> (installed by
/// <c>.ci/install</c>) and root (Dovecot drops to its own users).
/// </summary>
public sealed class PrivateDovecot : IDisposable
{
    private const string Dovecot = "/usr/sbin/dovecot";
    public const string User = "bounces";
    public const string Password = "mailbox-password-0123";
    private readonly Process _dovecot;
    private readonly string _dir;

    public int ImapPort { get; } = LoopbackPort.Free();

    public int Pop3Port { get; } = LoopbackPort.Free();

    public PrivateDovecot()
    {
        Assert.True(File.Exists(Dovecot), $"{Dovecot} is missing: install Debian's dovecot-imapd and dovecot-pop3d (.ci/install does)");
        _dir = Path.Combine(Path.GetTempPath(), $"dovecot-{Guid.NewGuid():N}");
        var mail = Path.Combine(_dir, "mail");
        Directory.CreateDirectory(mail);
        File.WriteAllText(Path.Combine(_dir, "users"), $"{User}:{{PLAIN}}{Password}::::::\n");
        var config = Path.Combine(_dir, "dovecot.conf");
        File.WriteAllText(config, $$"""
            base_dir = {{_dir}}/run
            state_dir = {{_dir}}/state
            log_path = {{_dir}}/dovecot.log
            protocols = imap pop3
            listen = 127.0.0.1
            ssl = no
            disable_plaintext_auth = no
            auth_mechanisms = plain login
            mail_location = maildir:{{mail}}/%u
            pop3_uidl_format = %08Xu%08Xv
            passdb {
              driver = passwd-file
              args = scheme=PLAIN username_format=%u {{_dir}}/users
            }
            userdb {
              driver = static
              args = uid=nobody gid=nogroup home={{mail}}/%u
            }
            service imap-login {
              inet_listener imap {
                address = 127.0.0.1
                port = {{ImapPort}}
              }
              inet_listener imaps {
                port = 0
              }
            }
            service pop3-login {
              inet_listener pop3 {
                address = 127.0.0.1
                port = {{Pop3Port}}
              }
              inet_listener pop3s {
                port = 0
              }
            }
            """);
        PrivateDaemon.Run("chown", "nobody:nogroup", mail);
        PrivateDaemon.Run("chmod", "755", _dir);
        _dovecot = Process.Start(new ProcessStartInfo(Dovecot, ["-F", "-c", config]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        PrivateDaemon.WaitForPorts(_dovecot, "Dovecot", Log, ImapPort, Pop3Port);
    }

    public string Log() => PrivateDaemon.ReadLog(Path.Combine(_dir, "dovecot.log"));

    public void Dispose() => PrivateDaemon.Stop(_dovecot, _dir);
}
