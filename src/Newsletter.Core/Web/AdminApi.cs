using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Digests;
using Newsletter.Subscribers;
using Newsletter.Validation;

namespace Newsletter.Web;

/// <summary>The admin HTTP API under <c>/api</c>, behind <c>Authorization: Bearer {Newsletter__AdminApiKey}</c>.</summary>
public static class AdminApi
{
    public static RouteGroupBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").AddEndpointFilter<AdminKeyFilter>();
        api.MapGet("/issues/{slug}/preview", PreviewIssue)
            .WithName("PreviewIssue")
            .WithSummary("The issue's digest HTML as a subscriber of the given language would receive it");
        return api;
    }

    public static async Task<Results<ContentHttpResult, NotFound<ProblemDetails>, ProblemHttpResult>> PreviewIssue(
        string slug, string? language, DigestPreview preview, CancellationToken ct)
    {
        Language lang;
        try
        {
            lang = language is null ? Language.Both : Wire.Parse<Language>("language", language);
        }
        catch (InputException e)
        {
            return TypedResults.Problem(title: "Invalid request", detail: e.Message, statusCode: StatusCodes.Status400BadRequest,
                extensions: new Dictionary<string, object?> { ["field"] = e.Field });
        }
        try
        {
            var (html, _) = await preview.RenderAsync(slug, lang, ct: ct);
            return TypedResults.Content(html, "text/html; charset=utf-8");
        }
        catch (NotFoundException e)
        {
            return TypedResults.NotFound(new ProblemDetails { Title = "Not found", Detail = e.Message, Status = 404, Extensions = { ["field"] = e.Field } });
        }
    }
}

/// <summary>
/// Lets a request through only with the configured admin key, compared in constant time. With no
/// key configured the admin API is closed. A refusal says nothing about why.
/// </summary>
internal sealed class AdminKeyFilter(IOptions<NewsletterOptions> options) : IEndpointFilter
{
    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var configured = options.Value.AdminApiKey;
        var header = context.HttpContext.Request.Headers.Authorization.ToString();
        var presented = header.StartsWith("Bearer ", StringComparison.Ordinal) ? header["Bearer ".Length..].Trim() : "";
        if (string.IsNullOrEmpty(configured) || !KeysEqual(configured, presented))
        {
            context.HttpContext.Response.Headers.WWWAuthenticate = "Bearer";
            return TypedResults.Problem(title: "Unauthorized", statusCode: StatusCodes.Status401Unauthorized);
        }
        return await next(context);
    }

    // Hash both sides first so the comparison takes the same time whatever the lengths.
    internal static bool KeysEqual(string expected, string presented) =>
        CryptographicOperations.FixedTimeEquals(
            SHA256.HashData(Encoding.UTF8.GetBytes(expected)),
            SHA256.HashData(Encoding.UTF8.GetBytes(presented)));
}
