using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Newsletter.Tests.Infrastructure;

/// <summary>A real <c>newsletter run</c> process on a free loopback port, stopped with SIGTERM at the end.</summary>
public sealed class ServiceProcess : IAsyncDisposable
{
    public const string AdminKey = "test-admin-key-0123456789abcdef";

    private readonly Process _process;
    private readonly Task<string> _output;
    private readonly Task<string> _error;

    private ServiceProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
        _output = process.StandardOutput.ReadToEndAsync();
        _error = process.StandardError.ReadToEndAsync();
        Http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public Uri BaseAddress { get; }

    public HttpClient Http { get; }

    public HttpClient Admin() => new(new HttpClientHandler()) { BaseAddress = BaseAddress, DefaultRequestHeaders = { Authorization = new("Bearer", AdminKey) } };

    /// <param name="healthy">Wait for /health to say healthy; false: wait only until it answers.</param>
    public static Task<ServiceProcess> StartAsync(TestDatabase db, IReadOnlyDictionary<string, string?>? extra = null, bool healthy = true) =>
        StartAsync(db.ConnectionString, extra, healthy);

    public static async Task<ServiceProcess> StartAsync(string connectionString, IReadOnlyDictionary<string, string?>? extra = null, bool healthy = true)
    {
        // A free port can be taken by another process (an outgoing connection) before the service
        // binds it: then it starts again on another one.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StartOnceAsync(connectionString, extra, healthy);
            }
            catch (PortTakenException) when (attempt < 5) { }
        }
    }

    private sealed class PortTakenException(string message) : Exception(message);

    private static async Task<ServiceProcess> StartOnceAsync(string connectionString, IReadOnlyDictionary<string, string?>? extra, bool healthy)
    {
        var port = LoopbackPort.Free();
        var baseAddress = new Uri($"http://127.0.0.1:{port}");
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = NewsletterProcess.TempDirectory(), RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { NewsletterProcess.Executable, "run", "--urls", baseAddress.ToString().TrimEnd('/') }) start.ArgumentList.Add(a);
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("Newsletter__", StringComparison.OrdinalIgnoreCase) || k.StartsWith("ConnectionStrings__", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(key);
        start.Environment["ConnectionStrings__Newsletter"] = connectionString;
        start.Environment["Newsletter__Secret"] = TestMail.Secret;
        start.Environment["Newsletter__AdminApiKey"] = AdminKey;
        start.Environment["Newsletter__PublicUrl"] = baseAddress.ToString().TrimEnd('/');
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>()) start.Environment[key] = value;

        var service = new ServiceProcess(Process.Start(start)!, baseAddress);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (service._process.HasExited)
            {
                var error = await service._error;
                throw error.Contains("address already in use", StringComparison.OrdinalIgnoreCase)
                    ? new PortTakenException(error)
                    : new InvalidOperationException($"newsletter run exited with {service._process.ExitCode}: {error}");
            }
            try
            {
                var health = await service.Http.GetAsync("/health");
                if (health.IsSuccessStatusCode || !healthy) return service;
            }
            catch (HttpRequestException) { }
            await Task.Delay(100);
        }
        await service.DisposeAsync();
        throw new TimeoutException("newsletter run did not answer /health within 60 s");
    }

    /// <summary>
    /// Settings of a service that sends to <paramref name="smtp"/> on loopback, looks for work
    /// often, and never catches up a period of the real schedule during a test.
    /// </summary>
    public static Dictionary<string, string?> SendingTo(TestSmtpServer smtp) => new()
    {
        ["Newsletter__Smtp__Host"] = "127.0.0.1",
        ["Newsletter__Smtp__Port"] = smtp.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Newsletter__Smtp__Security"] = "None",
        ["Newsletter__Delivery__PollInterval"] = "00:00:00.200",
        ["Newsletter__Schedule__MaxLateness"] = "00:00:00",
    };

    /// <summary>Follows a run through the admin API until it is done (at most a minute) and returns its last state.</summary>
    public static async Task<System.Text.Json.JsonElement> WaitForRunAsync(HttpClient admin, long id)
    {
        System.Text.Json.JsonElement run = default;
        for (var i = 0; i < 600; i++)
        {
            run = System.Text.Json.JsonDocument.Parse(await admin.GetStringAsync($"/api/sends/{id}")).RootElement;
            if (run.GetProperty("status").GetString() == "done") break;
            await Task.Delay(100);
        }
        Assert.Equal("done", run.GetProperty("status").GetString());
        return run;
    }

    /// <summary>SIGKILL: the process dies wherever it is, with no chance to clean up.</summary>
    public async Task KillAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
    }

    public async Task<(int ExitCode, string Output, string Error)> StopAsync(TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
        {
            _ = Process.Start("kill", ["-TERM", _process.Id.ToString()])!;
            using var wait = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
            try { await _process.WaitForExitAsync(wait.Token); }
            catch (OperationCanceledException) { _process.Kill(entireProcessTree: true); await _process.WaitForExitAsync(); }
        }
        return (_process.ExitCode, await _output, await _error);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Http.Dispose();
        _process.Dispose();
    }

}
