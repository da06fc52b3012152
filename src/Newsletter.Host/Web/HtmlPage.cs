using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Newsletter.Digests;

namespace Newsletter.Web;

/// <summary>What the server-rendered pages (subscriber pages and dashboard) share: form tokens and the response itself.</summary>
internal static class HtmlPage
{
    /// <summary>The antiforgery field for the page's forms (its cookie is set on the response).</summary>
    public static FormToken Token(HttpContext http, IAntiforgery antiforgery)
    {
        var tokens = antiforgery.GetAndStoreTokens(http);
        return new FormToken(tokens.FormFieldName, tokens.RequestToken!);
    }

    /// <summary>Renders <paramref name="template"/> and writes it with the security headers every page carries.</summary>
    public static async Task WriteAsync<T>(HttpContext http, string template, T model, int status, string contentSecurityPolicy, string referrerPolicy, bool noStore)
    {
        var html = await http.RequestServices.GetRequiredService<TemplateEngine>().RenderAsync(template, model);
        var response = http.Response;
        response.StatusCode = status;
        response.ContentType = "text/html; charset=utf-8";
        var headers = response.Headers;
        headers.ContentSecurityPolicy = contentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = referrerPolicy;
        if (noStore) headers.CacheControl = "no-store";
        await response.WriteAsync(html, http.RequestAborted);
    }
}
