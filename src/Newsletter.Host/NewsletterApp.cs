using Microsoft.Extensions.Options;
using Newsletter.Bounces;
using Newsletter.Configuration;
using Newsletter.Digests;
using Newsletter.Storage;
using Newsletter.Scheduling;
using Newsletter.Web;

namespace Newsletter;

/// <summary>
/// The composition root. <see cref="StartAsync"/> builds the host, validates configuration, brings up
/// the database (the private cluster when no connection string is set) and migrates it. The
/// <c>run</c> verb then serves HTTP; every other verb uses the services and exits.
/// </summary>
internal sealed class NewsletterApp : IAsyncDisposable
{
    /// <summary>The host's page and dashboard views, models of the templates under <c>templates/web</c> and <c>templates/admin</c>.</summary>
    public static readonly TemplateModels PageModels = new(typeof(NewsletterApp).Assembly);

    private readonly PostgresServer? _postgres;

    private NewsletterApp(WebApplication web, PostgresServer? postgres)
    {
        Web = web;
        _postgres = postgres;
    }

    public WebApplication Web { get; }

    /// <summary>The migrations this start applied (none when the schema was already current).</summary>
    public IReadOnlyList<Migration> AppliedMigrations { get; private set; } = [];

    public IServiceProvider Services => Web.Services;

    public T Get<T>() where T : notnull => Web.Services.GetRequiredService<T>();

    /// <param name="serve">True for the long-running service: HTTP endpoints and logs at Information.</param>
    /// <param name="urls">The <c>--urls</c> of the run verb, if given.</param>
    /// <exception cref="OptionsValidationException">A configuration value is invalid.</exception>
    /// <exception cref="StartupException">The database cannot be reached or started.</exception>
    public static async Task<NewsletterApp> StartAsync(bool serve, string? urls, CancellationToken ct)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        // CLI output goes to stdout; logs go to stderr so `newsletter subscriber list > file` stays clean.
        builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(serve ? LogLevel.Information : LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Npgsql", LogLevel.Warning);
        builder.Logging.AddFilter("Quartz", LogLevel.Warning);

        if (urls is not null) builder.WebHost.UseUrls(urls);
        else if (string.IsNullOrEmpty(builder.Configuration["urls"])) builder.WebHost.UseUrls("http://localhost:5080");

        builder.AddNewsletterCore();
        // Every verb compiles templates against the same assemblies, so they share compiled ones.
        builder.Services.AddSingleton(PageModels);
        if (serve) builder.AddNewsletterWeb().AddNewsletterScheduling().AddNewsletterBounces();

        var web = builder.Build();
        // Bad configuration stops here, before a database is started.
        web.Services.GetRequiredService<IStartupValidator>().Validate();

        PostgresServer? postgres = null;
        if (string.IsNullOrWhiteSpace(web.Configuration.GetConnectionString(NewsletterServices.ConnectionStringName)))
        {
            var options = web.Services.GetRequiredService<IOptions<NewsletterOptions>>().Value;
            postgres = await PostgresServer.StartAsync(options.DataDirectory, options.PostgresBinDirectory,
                web.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Newsletter.Postgres"), cancellationToken: ct);
            web.Configuration[$"ConnectionStrings:{NewsletterServices.ConnectionStringName}"] = postgres.ConnectionString;
        }

        var app = new NewsletterApp(web, postgres);
        try
        {
            app.AppliedMigrations = await web.Services.InitializeStorageAsync(ct);
        }
        catch (Npgsql.NpgsqlException e)
        {
            await app.DisposeAsync();
            throw new StartupException($"Cannot reach PostgreSQL: {e.Message}");
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
        if (serve) web.MapNewsletterWeb();
        return app;
    }

    public async ValueTask DisposeAsync()
    {
        await Web.DisposeAsync();
        if (_postgres is not null) await _postgres.DisposeAsync();
    }
}
