using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Newsletter.Storage;

/// <summary>
/// A private PostgreSQL cluster run from the locally installed server binaries, for when no
/// connection string is configured. The cluster lives in a folder the service owns, listens on a
/// free loopback port with a generated password, and is stopped by the process that started it.
/// A process that finds it already running (started by another <c>newsletter</c> process) joins it,
/// and the last process to leave stops it: each user holds a shared lock on a file in the data
/// folder, and a leaving process stops the server only if it can then take that lock alone (a
/// killed process's lock is released by the kernel).
/// When the service runs as root, initdb and postgres run as the unprivileged <c>postgres</c>
/// user (or <c>nobody</c>), because PostgreSQL refuses to run as root. That user must be able to
/// get into the cluster's folder: when a parent of the data folder is private to root (a data
/// folder under <c>/root</c>, mode 0700), the cluster lives in <see cref="OutsideRoot"/> instead,
/// in a folder of its own owned by that user, and the data folder records where.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    public const string DatabaseName = "newsletter";
    private const string SuperUser = "newsletter";

    /// <summary>Where clusters go whose data folder the server's user cannot reach.</summary>
    public const string OutsideRoot = "/var/lib/newsletter";

    private readonly string _binDirectory;
    private string _clusterDirectory;
    private readonly string? _runAs;
    private readonly ILogger _logger;
    private string _root = "";
    private FileStream? _userLock;

    private PostgresServer(string binDirectory, string clusterDirectory, string? runAs, ILogger logger)
    {
        _binDirectory = binDirectory;
        _clusterDirectory = clusterDirectory;
        _runAs = runAs;
        _logger = logger;
    }

    /// <summary>The connection string of the <c>newsletter</c> database in this cluster.</summary>
    public string ConnectionString { get; private set; } = "";

    /// <summary>Connection string of the <c>postgres</c> maintenance database (for creating databases).</summary>
    public string MaintenanceConnectionString => new NpgsqlConnectionStringBuilder(ConnectionString) { Database = "postgres", Pooling = false }.ConnectionString;

    public int Port { get; private set; }

    /// <summary>The cluster's folder: the data folder's <c>postgres</c> subfolder, or one under <see cref="OutsideRoot"/>.</summary>
    public string ClusterDirectory => _clusterDirectory;

    /// <summary>
    /// Starts (or joins) the cluster in <paramref name="dataDirectory"/>.
    /// </summary>
    /// <param name="dataDirectory">Folder the service owns; the cluster lives in its <c>postgres</c> subfolder.</param>
    /// <param name="binDirectory">PostgreSQL server binaries; null to look them up.</param>
    /// <param name="serverSettings">Extra <c>postgresql.conf</c> settings for this start (tests turn fsync off).</param>
    /// <exception cref="StartupException">The binaries are missing, or the cluster could not be created or started.</exception>
    public static async Task<PostgresServer> StartAsync(
        string dataDirectory, string? binDirectory, ILogger logger,
        IReadOnlyDictionary<string, string>? serverSettings = null, CancellationToken cancellationToken = default)
    {
        var bin = string.IsNullOrWhiteSpace(binDirectory) ? FindBinDirectory() : HasServerBinaries(binDirectory) ? binDirectory : null;
        if (bin is null)
            throw new StartupException(
                "PostgreSQL server binaries (initdb, pg_ctl) were not found" +
                (string.IsNullOrWhiteSpace(binDirectory) ? "" : $" in {binDirectory} (Newsletter__PostgresBinDirectory)") +
                " and ConnectionStrings__Newsletter is not set. Fix one of: install the server (apt-get install postgresql); " +
                "or run the service with its database in containers (docker compose up -d, see docker-compose.yml); " +
                "or set ConnectionStrings__Newsletter to an existing PostgreSQL server.");

        var root = Path.GetFullPath(dataDirectory);
        Directory.CreateDirectory(root);
        var server = new PostgresServer(bin, Path.Combine(root, "postgres"), IsRoot() ? UnprivilegedUser() : null, logger);

        // Two processes starting at once in the same folder must not both initdb or both start a server.
        await using var startLock = await AcquireLockAsync(Path.Combine(root, ".lock"), cancellationToken);
        await server.StartLockedAsync(root, serverSettings ?? new Dictionary<string, string>(), cancellationToken);
        return server;
    }

    private async Task StartLockedAsync(string root, IReadOnlyDictionary<string, string> settings, CancellationToken ct)
    {
        _root = root;
        if (_runAs is not null) _clusterDirectory = await ReachableClusterDirectoryAsync(root, ct);
        var passwordFile = Path.Combine(root, "postgres.password");
        if (!File.Exists(Path.Combine(_clusterDirectory, "PG_VERSION")))
            await InitializeAsync(passwordFile, ct);
        var password = (await File.ReadAllTextAsync(passwordFile, ct)).Trim();

        var running = await RunningPortAsync(ct);
        if (running is { } port)
        {
            Port = port;
            _logger.LogInformation("Using the PostgreSQL cluster already running in {Directory} on port {Port}", _clusterDirectory, port);
        }
        else
        {
            Port = FreeLoopbackPort();
            var options = string.Join(' ', new[] { $"-p {Port}" }.Concat(settings.Select(s => $"-c {s.Key}={s.Value}")));
            var log = Path.Combine(_clusterDirectory, "server.log");
            var result = await RunAsync("pg_ctl", ["start", "-D", _clusterDirectory, "-w", "-t", "60", "-l", log, "-o", options], ct);
            if (result.ExitCode != 0)
            {
                var tail = File.Exists(log) ? string.Join(" | ", File.ReadLines(log).TakeLast(5)) : "";
                throw new StartupException($"Could not start PostgreSQL in {_clusterDirectory}: {result.Output.Trim()} {tail}".Trim());
            }
            _logger.LogInformation("Started a private PostgreSQL cluster in {Directory} on 127.0.0.1:{Port}", _clusterDirectory, Port);
        }

        ConnectionString = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = Port,
            Username = SuperUser,
            Password = password,
            Database = DatabaseName,
        }.ConnectionString;
        // FileShare other than None takes a shared flock on Unix: "this process uses the server".
        _userLock = new FileStream(Path.Combine(root, ".users"), FileMode.OpenOrCreate, FileAccess.Read, FileShare.ReadWrite);
        await EnsureDatabaseAsync(ct);
    }

    private async Task InitializeAsync(string passwordFile, CancellationToken ct)
    {
        _logger.LogInformation("Creating a private PostgreSQL cluster in {Directory}", _clusterDirectory);
        if (Directory.Exists(_clusterDirectory))
            Directory.Delete(_clusterDirectory, recursive: true); // a half-made cluster from an interrupted initdb
        Directory.CreateDirectory(_clusterDirectory);
        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant();
        await File.WriteAllTextAsync(passwordFile, password, ct);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(passwordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        // initdb reads the password from a file the server user can read; it is removed right after.
        var initPasswordFile = Path.Combine(_clusterDirectory, "..", $".initdb-{Environment.ProcessId}");
        await File.WriteAllTextAsync(initPasswordFile, password, ct);
        try
        {
            if (_runAs is not null)
            {
                await ChownAsync(_clusterDirectory, ct);
                await ChownAsync(initPasswordFile, ct);
                await EnsureReachableAsync(ct);
            }
            var result = await RunAsync("initdb",
                ["-D", _clusterDirectory, "-U", SuperUser, "--pwfile", initPasswordFile, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"], ct);
            if (result.ExitCode != 0)
                throw new StartupException($"initdb failed in {_clusterDirectory}: {result.Output.Trim()}");
        }
        finally
        {
            File.Delete(initPasswordFile);
        }
        await File.AppendAllTextAsync(Path.Combine(_clusterDirectory, "postgresql.conf"),
            "\n# Written by newsletter: a private cluster reachable only on loopback.\n" +
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 200\n", ct);
    }

    private async Task<int?> RunningPortAsync(CancellationToken ct)
    {
        var pidFile = Path.Combine(_clusterDirectory, "postmaster.pid");
        if (!File.Exists(pidFile)) return null;
        var status = await RunAsync("pg_ctl", ["status", "-D", _clusterDirectory], ct);
        if (status.ExitCode != 0) return null;
        // postmaster.pid: line 4 holds the port (PostgreSQL's documented layout).
        var lines = await File.ReadAllLinesAsync(pidFile, ct);
        return lines.Length > 3 && int.TryParse(lines[3].Trim(), out var port) ? port : null;
    }

    private async Task EnsureDatabaseAsync(CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(MaintenanceConnectionString);
        await connection.OpenAsync(ct);
        await using var exists = new NpgsqlCommand("select 1 from pg_database where datname = @name", connection);
        exists.Parameters.AddWithValue("name", DatabaseName);
        if (await exists.ExecuteScalarAsync(ct) is not null) return;
        await using var create = new NpgsqlCommand($"create database {DatabaseName}", connection);
        try { await create.ExecuteNonQueryAsync(ct); }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DuplicateDatabase) { }
    }

    /// <summary>Restarts the server in place (same port and data), dropping every connection.</summary>
    internal async Task RestartAsync(CancellationToken ct = default)
    {
        var result = await RunAsync("pg_ctl", ["restart", "-D", _clusterDirectory, "-m", "fast", "-w", "-t", "60"], ct);
        if (result.ExitCode != 0) throw new StartupException($"Could not restart PostgreSQL in {_clusterDirectory}: {result.Output.Trim()}");
    }

    public async ValueTask DisposeAsync()
    {
        if (_userLock is null) return;
        NpgsqlConnection.ClearAllPools();
        await using var startLock = await AcquireLockAsync(Path.Combine(_root, ".lock"), CancellationToken.None);
        await _userLock.DisposeAsync();
        _userLock = null;
        try
        {
            // Exclusive only when no other process holds its shared lock: this one is the last user.
            await using var alone = new FileStream(Path.Combine(_root, ".users"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            _logger.LogInformation("Leaving the PostgreSQL cluster in {Directory} running for the other processes using it", _clusterDirectory);
            return;
        }
        var result = await RunAsync("pg_ctl", ["stop", "-D", _clusterDirectory, "-m", "fast", "-w", "-t", "30"], CancellationToken.None);
        if (result.ExitCode != 0)
            _logger.LogWarning("Stopping PostgreSQL in {Directory} failed: {Output}", _clusterDirectory, result.Output.Trim());
    }

    /// <summary>The folder with <c>initdb</c> and <c>pg_ctl</c>: <c>pg_config --bindir</c>, then the newest <c>/usr/lib/postgresql/*/bin</c>.</summary>
    public static string? FindBinDirectory()
    {
        try
        {
            using var pgConfig = Process.Start(new ProcessStartInfo("pg_config", "--bindir") { RedirectStandardOutput = true, RedirectStandardError = true });
            if (pgConfig is not null)
            {
                var dir = pgConfig.StandardOutput.ReadToEnd().Trim();
                pgConfig.WaitForExit();
                if (pgConfig.ExitCode == 0 && HasServerBinaries(dir)) return dir;
            }
        }
        catch (System.ComponentModel.Win32Exception) { } // no pg_config on PATH

        foreach (var root in new[] { "/usr/lib/postgresql", "/usr/local/lib/postgresql" })
        {
            if (!Directory.Exists(root)) continue;
            var newest = Directory.GetDirectories(root)
                .Select(d => (dir: Path.Combine(d, "bin"), version: int.TryParse(Path.GetFileName(d), out var v) ? v : 0))
                .Where(x => HasServerBinaries(x.dir))
                .OrderByDescending(x => x.version)
                .Select(x => x.dir)
                .FirstOrDefault();
            if (newest is not null) return newest;
        }
        return HasServerBinaries("/usr/local/pgsql/bin") ? "/usr/local/pgsql/bin" : null;
    }

    private static bool HasServerBinaries(string dir) =>
        File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl")) && File.Exists(Path.Combine(dir, "postgres"));

    private async Task<(int ExitCode, string Output)> RunAsync(string tool, IReadOnlyList<string> arguments, CancellationToken ct)
    {
        var path = Path.Combine(_binDirectory, tool);
        var start = _runAs is null ? new ProcessStartInfo(path) : new ProcessStartInfo("runuser");
        if (_runAs is not null)
        {
            foreach (var a in new[] { "-u", _runAs, "--", path }) start.ArgumentList.Add(a);
        }
        foreach (var a in arguments) start.ArgumentList.Add(a);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.WorkingDirectory = Path.GetDirectoryName(_clusterDirectory)!;
        start.Environment["LC_ALL"] = "C";
        using var process = Process.Start(start) ?? throw new StartupException($"Could not run {path}");
        // pg_ctl start leaves the server holding the inherited pipes; read only until the tool itself exits.
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        await Task.WhenAny(Task.WhenAll(stdout, stderr), Task.Delay(TimeSpan.FromSeconds(2), ct));
        var output = stdout.IsCompletedSuccessfully && stderr.IsCompletedSuccessfully ? stdout.Result + stderr.Result : "";
        return (process.ExitCode, output);
    }

    private async Task ChownAsync(string path, CancellationToken ct)
    {
        using var chown = Process.Start(new ProcessStartInfo("chown", ["-R", $"{_runAs}:", path]) { RedirectStandardError = true })!;
        await chown.WaitForExitAsync(ct);
        if (chown.ExitCode != 0)
            throw new StartupException($"Could not give {path} to user {_runAs}: {await chown.StandardError.ReadToEndAsync(ct)}");
    }

    /// <summary>
    /// The data folder's <c>postgres</c> subfolder when the server's user can get into the data
    /// folder (or a cluster is already there); else a folder of that user's own under
    /// <see cref="OutsideRoot"/>, named for the data folder and written down in it
    /// (<c>postgres.location</c>) so every later start finds the same cluster.
    /// </summary>
    private async Task<string> ReachableClusterDirectoryAsync(string root, CancellationToken ct)
    {
        if (OperatingSystem.IsWindows()) return _clusterDirectory; // no root, no runuser
        var location = Path.Combine(root, "postgres.location");
        if (File.Exists(location)) return (await File.ReadAllTextAsync(location, ct)).Trim();
        if (File.Exists(Path.Combine(_clusterDirectory, "PG_VERSION"))) return _clusterDirectory;
        using (var test = Process.Start(new ProcessStartInfo("runuser", ["-u", _runAs!, "--", "test", "-x", root]))!)
        {
            await test.WaitForExitAsync(ct);
            if (test.ExitCode == 0) return _clusterDirectory;
        }
        var home = Path.Combine(OutsideRoot, Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(root)))[..16].ToLowerInvariant());
        Directory.CreateDirectory(home);
        File.SetUnixFileMode(OutsideRoot, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        await ChownAsync(home, ct);
        File.SetUnixFileMode(home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var cluster = Path.Combine(home, "postgres");
        _logger.LogInformation("User {User} cannot reach {Root}: the PostgreSQL cluster goes in {Cluster}", _runAs, root, cluster);
        await File.WriteAllTextAsync(location, cluster + "\n", ct);
        return cluster;
    }

    private async Task EnsureReachableAsync(CancellationToken ct)
    {
        using var test = Process.Start(new ProcessStartInfo("runuser", ["-u", _runAs!, "--", "test", "-w", _clusterDirectory]))!;
        await test.WaitForExitAsync(ct);
        if (test.ExitCode != 0)
            throw new StartupException(
                $"PostgreSQL runs as user '{_runAs}', who cannot reach {_clusterDirectory} (a parent folder is private). " +
                "Set Newsletter__DataDirectory to a folder that user can reach, or set ConnectionStrings__Newsletter.");
    }

    private static async Task<IAsyncDisposable> AcquireLockAsync(string path, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            try
            {
                // FileShare.None takes an exclusive advisory lock (flock) on Unix.
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, ct);
            }
        }
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool IsRoot() => OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() ? geteuid() == 0 : false;

    private static string UnprivilegedUser()
    {
        var passwd = File.Exists("/etc/passwd") ? File.ReadAllLines("/etc/passwd") : [];
        return passwd.Any(l => l.StartsWith("postgres:", StringComparison.Ordinal)) ? "postgres" : "nobody";
    }

    [DllImport("libc", SetLastError = false)]
    private static extern uint geteuid();
}
