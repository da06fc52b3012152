using System.Net;
using System.Text.RegularExpressions;
using AngleSharp.Html.Parser;

namespace Newsletter.Tests.Web;

/// <summary>A browser without a browser: cookies, no redirects, and the antiforgery field of the last page read.</summary>
public sealed partial class PageClient : IDisposable
{
    private readonly HttpClient _http;

    public PageClient(Uri baseAddress)
    {
        _http = new HttpClient(new HttpClientHandler { CookieContainer = Cookies, AllowAutoRedirect = false }) { BaseAddress = baseAddress };
    }

    /// <summary>The cookies this client holds, as a browser's cookie store would.</summary>
    public CookieContainer Cookies { get; } = new();

    /// <summary>The antiforgery field of the last page read (empty when it had none).</summary>
    public string Token { get; private set; } = "";

    public async Task<(HttpStatusCode Status, string Html)> GetAsync(string path, string? acceptLanguage = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (acceptLanguage is not null) request.Headers.AcceptLanguage.ParseAdd(acceptLanguage);
        using var response = await _http.SendAsync(request);
        return await ReadAsync(response);
    }

    /// <summary>Posts a url-encoded form; the antiforgery field is added unless <paramref name="withToken"/> is false.</summary>
    public async Task<(HttpStatusCode Status, string Html)> PostAsync(string path, IEnumerable<(string Name, string Value)> fields, bool withToken = true)
    {
        var all = fields.Select(f => new KeyValuePair<string, string>(f.Name, f.Value)).ToList();
        if (withToken) all.Add(new("__af", Token));
        using var response = await _http.PostAsync(path, new FormUrlEncodedContent(all));
        return await ReadAsync(response);
    }

    public async Task<(HttpStatusCode Status, string Html)> SendAsync(HttpRequestMessage request)
    {
        using var response = await _http.SendAsync(request);
        return await ReadAsync(response);
    }

    private async Task<(HttpStatusCode, string)> ReadAsync(HttpResponseMessage response)
    {
        var html = await response.Content.ReadAsStringAsync();
        Token = AntiforgeryField().Match(html) is { Success: true } m ? WebUtility.HtmlDecode(m.Groups[1].Value) : "";
        return (response.StatusCode, html);
    }

    /// <summary>The text of the page's h1.</summary>
    public static string Heading(string html) => new HtmlParser().ParseDocument(html).QuerySelector("h1")?.TextContent.Trim() ?? "";

    /// <summary>The visible text of the page's main element.</summary>
    public static string Text(string html) => new HtmlParser().ParseDocument(html).QuerySelector("main")?.TextContent ?? "";

    [GeneratedRegex("name=\"__af\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();

    public void Dispose() => _http.Dispose();
}
