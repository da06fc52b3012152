using Microsoft.AspNetCore.Http;
using Newsletter.Subscribers;

namespace Newsletter.Web.Subscribers;

/// <summary>Which language a reader's page speaks.</summary>
internal static class PageLanguage
{
    /// <summary><c>?lang=</c>, then the subscriber's language, then Accept-Language, then Korean.</summary>
    public static PageStrings Of(HttpContext http, Subscriber? subscriber)
    {
        var query = http.Request.Query["lang"].ToString();
        if (query is "ko" or "en") return PageStrings.For(query);
        if (subscriber is not null) return PageStrings.For(subscriber.Language == Language.En ? "en" : "ko");
        foreach (var value in http.Request.GetTypedHeaders().AcceptLanguage.OrderByDescending(v => v.Quality ?? 1))
        {
            var tag = value.Value.ToString();
            if (tag.StartsWith("ko", StringComparison.OrdinalIgnoreCase)) return PageStrings.Ko;
            if (tag.StartsWith("en", StringComparison.OrdinalIgnoreCase)) return PageStrings.En;
        }
        return PageStrings.Ko;
    }

    /// <summary>The language of the page's "other language" link.</summary>
    public static string Other(PageStrings s) => s.Lang == "ko" ? "en" : "ko";

    /// <summary>The digest language a page in <paramref name="s"/>'s language shows.</summary>
    public static Language Reading(PageStrings s) => s.Lang == "en" ? Language.En : Language.Ko;
}
