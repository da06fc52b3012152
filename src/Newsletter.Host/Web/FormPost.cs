using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;
using Newsletter.Validation;

namespace Newsletter.Web;

/// <summary>
/// A form post as every page reads it (the reader's pages and the dashboard): size-limited,
/// antiforgery-checked, and holding only the fields the form has. What is wrong is thrown and
/// answered by <see cref="WebErrors"/>: a body over the limit is a 413, a request that is no form
/// or a broken one a 400, a missing or foreign antiforgery token a 400 "form expired", an unknown
/// field a 400 naming it.
/// </summary>
public sealed class FormPost
{
    /// <summary>The antiforgery field every form carries (its cookie is <c>nl-af</c>).</summary>
    public const string AntiforgeryField = "__af";

    private const int MaxFields = 32;
    private const int MaxFieldNameLength = 64;

    private readonly IFormCollection _values;

    private FormPost(IFormCollection values) => _values = values;

    /// <summary>The field's value (the last, if sent more than once), or null when absent.</summary>
    public string? Value(string name) => _values.TryGetValue(name, out var v) && v.Count > 0 ? v[^1] : null;

    public IFormFileCollection Files => _values.Files;

    public static async Task<FormPost> ReadAsync(HttpContext http, long maxBytes, params string[] fields)
    {
        var values = await ReadValuesAsync(http, maxBytes);
        await http.RequestServices.GetRequiredService<IAntiforgery>().ValidateRequestAsync(http);
        foreach (var key in values.Keys)
            if (key != AntiforgeryField && !fields.Contains(key))
                throw new InputException(TextRules.Shorten(key), "is not a field of this form", InputRule.UnknownField);
        return new FormPost(values);
    }

    /// <summary>
    /// A body that may or may not be there and carries no antiforgery token (RFC 8058 one-click
    /// posts from mail providers): its values when it is a readable form, otherwise none.
    /// </summary>
    public static async Task<FormPost?> ReadOptionalAsync(HttpContext http, long maxBytes)
    {
        if (!http.Request.HasFormContentType) return null;
        try
        {
            return new FormPost(await ReadValuesAsync(http, maxBytes));
        }
        catch (Exception e) when (e is UnreadableFormException or BadHttpRequestException or IOException)
        {
            return null;
        }
    }

    private static async Task<IFormCollection> ReadValuesAsync(HttpContext http, long maxBytes)
    {
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = maxBytes;
        if (!http.Request.HasFormContentType)
            throw new UnreadableFormException(notAForm: true, "the request is not a form (application/x-www-form-urlencoded or multipart/form-data)");
        if (http.Features.Get<IFormFeature>() is null)
            http.Features.Set<IFormFeature>(new FormFeature(http.Request, new FormOptions
            {
                ValueCountLimit = MaxFields, KeyLengthLimit = MaxFieldNameLength, ValueLengthLimit = (int)Math.Min(maxBytes, int.MaxValue),
                MultipartBodyLengthLimit = maxBytes, MultipartHeadersLengthLimit = 4096,
            }));
        var bufferLimit = (int)Math.Min(maxBytes, int.MaxValue);
        http.Request.EnableBuffering(bufferThreshold: Math.Min(bufferLimit, 64 * 1024), bufferLimit: bufferLimit);
        try
        {
            return await http.Request.ReadFormAsync(http.RequestAborted);
        }
        catch (InvalidDataException) when (http.Request.ContentType?.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase) == true)
        {
            return await ReadPairsAsync(http);
        }
        catch (Exception e) when (e is InvalidDataException or IOException && e is not BadHttpRequestException)
        {
            throw new UnreadableFormException(notAForm: false, e.Message, e);
        }
    }

    /// <summary>
    /// The framework refuses a url-encoded value holding a control character without saying which
    /// field it was in; such a form (already within the size limit) is read pair by pair instead,
    /// so the field's own rule refuses it by name like any other bad value.
    /// </summary>
    private static async Task<IFormCollection> ReadPairsAsync(HttpContext http)
    {
        http.Request.Body.Position = 0;
        using var reader = new StreamReader(http.Request.Body, new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true), false, 4096, leaveOpen: true);
        string body;
        try { body = await reader.ReadToEndAsync(http.RequestAborted); }
        catch (System.Text.DecoderFallbackException) { throw new UnreadableFormException(notAForm: false, "the form is not UTF-8"); }
        var pairs = new Dictionary<string, StringValues>(StringComparer.OrdinalIgnoreCase);
        foreach (var pair in body.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=');
            var key = Decode(eq < 0 ? pair : pair[..eq]);
            var value = eq < 0 ? "" : Decode(pair[(eq + 1)..]);
            if (key.Length > MaxFieldNameLength || pairs.Count >= MaxFields)
                throw new UnreadableFormException(notAForm: false, "the form has too many or too long fields");
            pairs[key] = StringValues.Concat(pairs.GetValueOrDefault(key), value);
        }
        var form = new FormCollection(pairs);
        http.Features.Set<IFormFeature>(new FormFeature(form));
        return form;

        static string Decode(string text) => Uri.UnescapeDataString(text.Replace('+', ' '));
    }
}
