using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Newsletter.Digests;

namespace Newsletter.Web;

/// <summary>The headers a group of pages is served with: its content security policy, referrer policy and caching.</summary>
public sealed record PagePolicy(string ContentSecurityPolicy, string ReferrerPolicy);

/// <summary>What the server-rendered pages (the reader's pages and the dashboard) share: form tokens and the response itself.</summary>
internal static class HtmlPage
{
    /// <summary>The antiforgery field for the page's forms (its cookie is set on the response).</summary>
    public static FormToken Token(HttpContext http)
    {
        var tokens = http.RequestServices.GetRequiredService<IAntiforgery>().GetAndStoreTokens(http);
        return new FormToken(tokens.FormFieldName, tokens.RequestToken!);
    }

    /// <summary>Renders <paramref name="template"/> and writes it with the security headers every page carries.</summary>
    public static async Task WriteAsync<T>(HttpContext http, string template, T model, int status, PagePolicy policy, bool noStore)
    {
        var html = await http.RequestServices.GetRequiredService<TemplateEngine>().RenderAsync(template, model);
        var response = http.Response;
        response.StatusCode = status;
        response.ContentType = "text/html; charset=utf-8";
        var headers = response.Headers;
        headers.ContentSecurityPolicy = policy.ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = policy.ReferrerPolicy;
        if (noStore) headers.CacheControl = "no-store";
        await response.WriteAsync(html, http.RequestAborted);
    }
}

/// <summary>A page rendered from a template: what page handlers return.</summary>
public sealed class HtmlResult(Func<HttpContext, Task> write, int status) : IResult, IStatusCodeHttpResult
{
    public int? StatusCode => status;

    public Task ExecuteAsync(HttpContext httpContext) => write(httpContext);
}

/// <summary>303 See Other: where a form post sends the browser, so a reload never repeats it.</summary>
public sealed class SeeOtherResult(string location) : IResult, IStatusCodeHttpResult
{
    public int? StatusCode => StatusCodes.Status303SeeOther;

    public string Location => location;

    public Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = StatusCodes.Status303SeeOther;
        httpContext.Response.Headers.Location = location;
        return Task.CompletedTask;
    }
}
