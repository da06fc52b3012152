using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;

namespace Newsletter.Web;

/// <summary>
/// The one way in for an admin: the <see cref="Policy"/> authorization policy, which accepts the
/// dashboard's session cookie under <c>/admin</c> and <c>Authorization: Bearer {Newsletter__AdminApiKey}</c>
/// everywhere else (the API, and <c>/metrics</c> when it is admin-only). Both check the key through
/// <see cref="AdminKey"/>, so they share the constant-time comparison and the lockout.
/// </summary>
public static class AdminAuthentication
{
    public const string Policy = "admin";

    /// <summary>The dashboard's cookie sessions (the name is part of every stored session ticket).</summary>
    public const string CookieScheme = "admin";

    public const string BearerScheme = "admin-key";

    /// <summary>Chooses the cookie or the bearer key by path.</summary>
    public const string Scheme = "admin-any";

    public static IHostApplicationBuilder AddAdminAuthentication(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<AuthFailures>();
        builder.Services.AddSingleton<AdminKey>();
        builder.Services.AddAuthentication(CookieScheme)
            .AddCookie(CookieScheme, o =>
            {
                o.Cookie.Name = "nl-admin";
                o.Cookie.HttpOnly = true;
                o.Cookie.SameSite = SameSiteMode.Strict;
                o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                o.Cookie.Path = "/admin";
                o.LoginPath = "/admin/login";
                o.ExpireTimeSpan = TimeSpan.FromHours(8);
                o.SlidingExpiration = true;
            })
            .AddScheme<AuthenticationSchemeOptions, AdminKeyHandler>(BearerScheme, null)
            .AddPolicyScheme(Scheme, null, o => o.ForwardDefaultSelector = http =>
                http.Request.Path.StartsWithSegments("/admin") ? CookieScheme : BearerScheme);
        // Sessions live on the server, so sign-out, revocation and a new admin key end them.
        builder.Services.AddSingleton<AdminSessions>();
        builder.Services.AddOptions<CookieAuthenticationOptions>(CookieScheme).Configure<AdminSessions>((o, sessions) => o.SessionStore = sessions);
        builder.Services.AddAuthorizationBuilder().AddPolicy(Policy, p => p.AddAuthenticationSchemes(Scheme).RequireAuthenticatedUser());
        return builder;
    }

    internal static ClaimsPrincipal Admin(string scheme) => new(new ClaimsIdentity([new Claim(ClaimTypes.Name, "admin")], scheme));
}

/// <summary>The outcome of presenting an admin key.</summary>
public enum AdminKeyCheck
{
    Accepted,
    /// <summary>No key was presented.</summary>
    Missing,
    Wrong,
    /// <summary>No admin key is configured: the API and the dashboard are closed.</summary>
    Closed,
    /// <summary>Too many wrong keys from this address lately; refused whatever the key.</summary>
    Blocked,
}

/// <summary>
/// Checks a presented admin key against <c>Newsletter__AdminApiKey</c> in constant time, counting
/// wrong keys per client address (<see cref="AuthFailures"/>). Only a wrong key counts: a client
/// that sends none cannot lock the admin out.
/// </summary>
public sealed class AdminKey(IOptions<NewsletterOptions> options, AuthFailures failures)
{
    public (AdminKeyCheck Check, TimeSpan Wait) Check(string? clientAddress, string presented)
    {
        if (failures.Blocked(clientAddress) is { } wait) return (AdminKeyCheck.Blocked, wait);
        var configured = options.Value.AdminApiKey;
        if (string.IsNullOrEmpty(configured)) return (AdminKeyCheck.Closed, TimeSpan.Zero);
        if (presented.Length == 0) return (AdminKeyCheck.Missing, TimeSpan.Zero);
        if (KeysEqual(configured, presented)) return (AdminKeyCheck.Accepted, TimeSpan.Zero);
        failures.Fail(clientAddress);
        return (AdminKeyCheck.Wrong, TimeSpan.Zero);
    }

    public static string RetryAfter(TimeSpan wait) => ((int)Math.Ceiling(wait.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    // Hash both sides first so the comparison takes the same time whatever the lengths.
    private static bool KeysEqual(string expected, string presented) =>
        CryptographicOperations.FixedTimeEquals(
            SHA256.HashData(Encoding.UTF8.GetBytes(expected)),
            SHA256.HashData(Encoding.UTF8.GetBytes(presented)));
}

/// <summary>
/// <c>Authorization: Bearer {key}</c>. A refusal says nothing about why: 401 with
/// <c>WWW-Authenticate: Bearer</c>, or 429 with <c>Retry-After</c> while the address is locked out.
/// </summary>
internal sealed class AdminKeyHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, AdminKey key)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    private TimeSpan? _blockedFor;

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        var presented = header.StartsWith("Bearer ", StringComparison.Ordinal) ? header["Bearer ".Length..].Trim() : "";
        var (check, wait) = key.Check(Context.Connection.RemoteIpAddress?.ToString(), presented);
        switch (check)
        {
            case AdminKeyCheck.Accepted:
                return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(AdminAuthentication.Admin(Scheme.Name), Scheme.Name)));
            case AdminKeyCheck.Blocked:
                _blockedFor = wait;
                return Task.FromResult(AuthenticateResult.Fail("too many wrong keys"));
            case AdminKeyCheck.Missing:
                return Task.FromResult(AuthenticateResult.NoResult());
            default:
                return Task.FromResult(AuthenticateResult.Fail("not the admin key"));
        }
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        if (_blockedFor is { } wait)
        {
            Response.Headers.RetryAfter = AdminKey.RetryAfter(wait);
            return TypedResults.Problem(title: "Too many requests", statusCode: StatusCodes.Status429TooManyRequests).ExecuteAsync(Context);
        }
        Response.Headers.WWWAuthenticate = "Bearer";
        return TypedResults.Problem(title: "Unauthorized", statusCode: StatusCodes.Status401Unauthorized).ExecuteAsync(Context);
    }
}
