using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Dapper;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Web.Admin;
using Newsletter.Web.Api;
using Newsletter.Web.Subscribers;
using Newsletter.Web.Webhooks;
using Npgsql;

namespace Newsletter.Web;

/// <summary>The HTTP surface of the <c>run</c> process.</summary>
public static class WebServices
{
    public static IHostApplicationBuilder AddNewsletterWeb(this IHostApplicationBuilder builder)
    {
        builder.Services.AddProblemDetails();
        // Forwarded headers are believed from the configured proxies only. This also holds when
        // ASPNETCORE_FORWARDEDHEADERS_ENABLED is set, which would otherwise believe anyone.
        builder.Services.AddOptions<ForwardedHeadersOptions>().PostConfigure<Microsoft.Extensions.Options.IOptions<NewsletterOptions>>((o, newsletter) =>
        {
            var proxies = newsletter.Value.KnownProxyNetworks;
            o.KnownProxies.Clear();
            o.KnownIPNetworks.Clear();
            foreach (var network in proxies) o.KnownIPNetworks.Add(network);
            o.ForwardedHeaders = proxies.Count > 0 ? ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto : ForwardedHeaders.None;
            o.ForwardLimit = null; // walk back through every known proxy, stop at the first address that is not one
        });
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "Newsletter admin API";
            document.Info.Description = "Every route under /api needs Authorization: Bearer {Newsletter__AdminApiKey}.";
            document.Components ??= new Microsoft.OpenApi.OpenApiComponents();
            document.Components.SecuritySchemes = new Dictionary<string, Microsoft.OpenApi.IOpenApiSecurityScheme>
            {
                [AdminAuthentication.BearerScheme] = new Microsoft.OpenApi.OpenApiSecurityScheme
                {
                    Type = Microsoft.OpenApi.SecuritySchemeType.Http, Scheme = "bearer", Description = "Newsletter__AdminApiKey",
                },
            };
            document.Security = [new Microsoft.OpenApi.OpenApiSecurityRequirement { [new Microsoft.OpenApi.OpenApiSecuritySchemeReference(AdminAuthentication.BearerScheme, document)] = [] }];
            return Task.CompletedTask;
        }).AddOperationTransformer(async (operation, context, ct) =>
        {
            if (context.Description.ActionDescriptor.EndpointMetadata.OfType<RequestBodyDescription>().FirstOrDefault() is not { } body) return;
            var schema = await context.GetOrCreateSchemaAsync(body.Type, null, ct);
            operation.RequestBody = new Microsoft.OpenApi.OpenApiRequestBody
            {
                Required = true,
                Content = new Dictionary<string, Microsoft.OpenApi.OpenApiMediaType> { [body.ContentType] = new() { Schema = schema } },
            };
        }));
        // One antiforgery set-up for every form, the reader's pages and the dashboard alike (FormPost
        // checks it); its keys are kept in the database, so a form survives a restart.
        builder.Services.AddAntiforgery(o =>
        {
            o.FormFieldName = FormPost.AntiforgeryField;
            o.Cookie.Name = "nl-af";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.SuppressXFrameOptionsHeader = false;
        });
        Microsoft.AspNetCore.DataProtection.DataProtectionBuilderExtensions.SetApplicationName(builder.Services.AddDataProtection(), "newsletter");
        builder.Services.AddSingleton<Microsoft.Extensions.Options.IConfigureOptions<Microsoft.AspNetCore.DataProtection.KeyManagement.KeyManagementOptions>, DataProtectionKeysInDatabase>();
        // One answer per kind of failure for every route (WebErrors), shown as each route's group shows it.
        builder.Services.AddExceptionHandler<WebExceptionHandler>();
        builder.AddAdminAuthentication();
        builder.AddSubscriberPages();
        builder.AddNewsletterWebhooks();
        builder.Services.AddHealthChecks().AddCheck<DatabaseHealthCheck>("database").AddCheck<SmtpHealthCheck>("smtp");
        return builder;
    }

    private static readonly string QueueDepthSql = $"""
        select (select count(*) from deliveries d join runs r on r.id = d.run_id
                where r.status = {LedgerStates.Sql(RunStatus.Sending)} and d.status in ({SendLedger.DueDeliveryStates}))
             + (select coalesce(sum({SendLedger.UnwrittenReaders("r")}), 0) from runs r where r.status = {LedgerStates.Sql(RunStatus.Sending)})
        """;

    private static readonly string PausedRunsSql = $"select count(*) from runs where status = {LedgerStates.Sql(RunStatus.Paused)}";

    public static WebApplication MapNewsletterWeb(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<NewsletterOptions>>().Value;
        // (With ASPNETCORE_FORWARDEDHEADERS_ENABLED the host has added the middleware already.)
        if (options.KnownProxyNetworks.Count > 0 && !string.Equals(app.Configuration["ASPNETCORE_FORWARDEDHEADERS_ENABLED"], "true", StringComparison.OrdinalIgnoreCase)
            && !string.Equals(app.Configuration["FORWARDEDHEADERS_ENABLED"], "true", StringComparison.OrdinalIgnoreCase))
            app.UseForwardedHeaders();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapSubscriberPages();
        app.MapAdminPages();
        app.MapAdminApi();
        app.MapNewsletterWebhooks();
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapHealthChecks("/health", new HealthCheckOptions
        {
            ResponseWriter = (context, report) =>
            {
                context.Response.ContentType = "application/json";
                return context.Response.WriteAsJsonAsync(new
                {
                    status = report.Status.ToString().ToLowerInvariant(),
                    checks = report.Entries.ToDictionary(e => e.Key, e => e.Value.Status.ToString().ToLowerInvariant()),
                });
            },
        });
        if (options.MetricsAccess == MetricsAccess.Off) return app;
        var metricsRoute = app.MapGet("/metrics", async (DeliveryMetrics metrics, Newsletter.Tracking.ClickRecorder clicks, NpgsqlDataSource db, CancellationToken ct) =>
        {
            await using var connection = await db.OpenConnectionAsync(ct);
            var depth = await connection.ExecuteScalarAsync<long>(new CommandDefinition(QueueDepthSql, cancellationToken: ct));
            var paused = await connection.ExecuteScalarAsync<long>(new CommandDefinition(PausedRunsSql, cancellationToken: ct));
            var counted = (await connection.QueryAsync<(string, long)>(new CommandDefinition(
                "select verdict, sum(requests)::bigint from click_counts group by verdict order by verdict", cancellationToken: ct))).ToList();
            return Results.Text(metrics.Write(depth, paused, counted, clicks.Dropped), "text/plain; version=0.0.4; charset=utf-8");
        }).WithName("Metrics").WithSummary("Prometheus metrics of the delivery engine");
        if (options.MetricsAccess == MetricsAccess.Admin) metricsRoute.RequireAuthorization(AdminAuthentication.Policy);
        return app;
    }
}

/// <summary>The mail server answers (connect and EHLO), or the pickup folder is writable.</summary>
internal sealed class SmtpHealthCheck(Microsoft.Extensions.Options.IOptions<SmtpOptions> options) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var o = options.Value;
        if (o.UsesPickupDirectory)
        {
            try
            {
                Directory.CreateDirectory(o.PickupDirectory);
                var probe = Path.Combine(o.PickupDirectory, $".health-{Environment.ProcessId}");
                await File.WriteAllTextAsync(probe, "", cancellationToken);
                File.Delete(probe);
                return HealthCheckResult.Healthy();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return HealthCheckResult.Unhealthy("pickup folder not writable");
            }
        }
        using var client = new MailKit.Net.Smtp.SmtpClient { Timeout = 10_000 };
        try
        {
            var security = o.Security switch
            {
                SmtpSecurity.StartTls => MailKit.Security.SecureSocketOptions.StartTls,
                SmtpSecurity.SslOnConnect => MailKit.Security.SecureSocketOptions.SslOnConnect,
                _ => MailKit.Security.SecureSocketOptions.None,
            };
            await client.ConnectAsync(o.Host!, o.Port, security, cancellationToken);
            await client.DisconnectAsync(quit: true, cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return HealthCheckResult.Unhealthy("smtp unreachable");
        }
    }
}

internal sealed class DatabaseHealthCheck(NpgsqlDataSource db) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var command = db.CreateCommand("select 1");
            await command.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy("database unreachable");
        }
    }
}
