using MimeKit;

namespace Newsletter.Configuration;

/// <summary>The <c>Newsletter</c> configuration section: what every part of the service shares.</summary>
public sealed class NewsletterOptions
{
    public const string Section = "Newsletter";

    /// <summary>Folder the service owns for its private PostgreSQL cluster (relative to the working directory).</summary>
    public string DataDirectory { get; set; } = ".newsletter";

    /// <summary>Base URL of every link in a mail (unsubscribe, preferences, view in browser).</summary>
    public string PublicUrl { get; set; } = "http://localhost:5080";

    /// <summary>The From mailbox, e.g. <c>PyTorchKR Newsletter &lt;news@example.org&gt;</c>.</summary>
    public string From { get; set; } = "Newsletter <newsletter@example.com>";

    /// <summary>Optional Reply-To mailbox.</summary>
    public string? ReplyTo { get; set; }

    /// <summary>Bearer key for the admin HTTP API; the API answers 401 to everyone while it is unset.</summary>
    public string? AdminApiKey { get; set; }

    /// <summary>Key for signed links; when unset one is generated once and kept in the database.</summary>
    public string? Secret { get; set; }

    /// <summary>A copy of <c>templates/</c> to restyle mail and pages without rebuilding.</summary>
    public string? TemplatesDirectory { get; set; }

    /// <summary>Where compiled templates are kept between processes; <c>{DataDirectory}/compiled-templates</c> when unset.</summary>
    public string? CompiledTemplatesDirectory { get; set; }

    /// <summary>Folder with PostgreSQL's server binaries (initdb, pg_ctl) for the private cluster; found automatically when unset.</summary>
    public string? PostgresBinDirectory { get; set; }

    /// <summary>
    /// Reverse proxies whose <c>X-Forwarded-For</c> and <c>X-Forwarded-Proto</c> are believed:
    /// IP addresses or CIDR networks, comma-separated (e.g. <c>127.0.0.1,10.0.0.0/8</c>). Unset:
    /// no forwarded header is believed from anyone.
    /// </summary>
    public string? KnownProxies { get; set; }

    /// <summary>Who may read <c>/metrics</c>: <c>Admin</c> (the admin key as a bearer token), <c>Open</c> (anyone) or <c>Off</c>.</summary>
    public MetricsAccess MetricsAccess { get; set; } = MetricsAccess.Admin;

    public MailboxAddress FromMailbox => MailboxAddress.Parse(From);

    /// <summary>The parsed <see cref="KnownProxies"/>: every entry as a network (a single address is a /32 or /128).</summary>
    public IReadOnlyList<System.Net.IPNetwork> KnownProxyNetworks =>
        (KnownProxies ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(entry => System.Net.IPAddress.TryParse(entry, out var address)
                ? new System.Net.IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128)
                : System.Net.IPNetwork.Parse(entry))
            .ToList();

    public string ResolvedCompiledTemplatesDirectory =>
        Path.GetFullPath(string.IsNullOrWhiteSpace(CompiledTemplatesDirectory)
            ? Path.Combine(DataDirectory, "compiled-templates")
            : CompiledTemplatesDirectory);

    public string ResolvedTemplatesDirectory =>
        Path.GetFullPath(string.IsNullOrWhiteSpace(TemplatesDirectory)
            ? Path.Combine(AppContext.BaseDirectory, "templates")
            : TemplatesDirectory);
}

public enum MetricsAccess
{
    Admin,
    Open,
    Off,
}

public enum SmtpSecurity
{
    None,
    StartTls,
    SslOnConnect,
}

/// <summary>The <c>Newsletter:Smtp</c> section: where mail goes.</summary>
public sealed class SmtpOptions
{
    public const string Section = "Newsletter:Smtp";

    /// <summary>SMTP server; when unset, messages are written as .eml files to <see cref="PickupDirectory"/>.</summary>
    public string? Host { get; set; }

    public int Port { get; set; } = 587;

    public string? Username { get; set; }

    public string? Password { get; set; }

    public SmtpSecurity Security { get; set; } = SmtpSecurity.StartTls;

    /// <summary>Where .eml files go while no SMTP host is configured (relative to the working directory).</summary>
    public string PickupDirectory { get; set; } = "outbox";

    /// <summary>EHLO name: the sending host's fully qualified name, matching its PTR record.</summary>
    public string? LocalDomain { get; set; }

    /// <summary>Envelope sender (MAIL FROM) for bounces; the From address when unset.</summary>
    public string? ReturnPath { get; set; }

    /// <summary>Timeout of one SMTP command in seconds, the wait for the reply to the end of DATA included (RFC 5321 allows the server 10 minutes).</summary>
    public int TimeoutSeconds { get; set; } = 600;

    public bool UsesPickupDirectory => string.IsNullOrWhiteSpace(Host);
}
