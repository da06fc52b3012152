using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using Newsletter.Validation;

namespace Newsletter.Web.Api;

/// <summary>
/// Reads a JSON request body strictly: <c>application/json</c> in UTF-8, a size limit, an object,
/// each field once, and only the fields a request record knows. Every refusal is an
/// <see cref="InputException"/> naming the field (<c>$</c> for the body as a whole).
/// </summary>
internal static class JsonBody
{
    public const int MaxBytes = 1_000_000;

    public static async Task<string> ReadTextAsync(HttpRequest request, CancellationToken ct)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var type)
            || !(type.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
                 || (type.MediaType.StartsWith("application/", StringComparison.OrdinalIgnoreCase) && type.MediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase))))
            throw new InputException("Content-Type", $"must be application/json (got '{TextRules.Shorten(request.ContentType ?? "")}')");
        if (type.Charset.HasValue && !type.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase))
            throw new InputException("Content-Type", $"the charset must be utf-8 (got '{TextRules.Shorten(type.Charset.ToString())}')");
        if (request.ContentLength > MaxBytes)
            throw new InputException("$", $"the request body must be at most {MaxBytes} bytes");
        var buffer = new byte[MaxBytes + 1];
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await request.Body.ReadAsync(buffer.AsMemory(read), ct);
            if (n == 0) break;
            read += n;
        }
        if (read > MaxBytes) throw new InputException("$", $"the request body must be at most {MaxBytes} bytes");
        return JsonText.Decode(buffer.AsSpan(0, read));
    }

    /// <summary>Binds a request record from the body's fields (see <see cref="Fields"/>).</summary>
    public static async ValueTask<T?> BindAsync<T>(HttpContext http, string[] allowed, Func<Fields, T> create) =>
        create(await ReadFieldsAsync(http.Request, allowed, http.RequestAborted));

    /// <summary>The body's fields, refusing unknown or repeated fields and values that are not strings, true, false or null.</summary>
    public static async Task<Fields> ReadFieldsAsync(HttpRequest request, string[] allowed, CancellationToken ct)
    {
        var text = await ReadTextAsync(request, ct);
        JsonDocument document;
        try { document = JsonDocument.Parse(text); }
        catch (JsonException e) { throw new InputException("$", $"is not valid JSON (line {e.LineNumber + 1})"); }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw new InputException("$", "must be a JSON object");
            JsonText.RejectDuplicates(document.RootElement, name => name);
            var fields = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!allowed.Contains(property.Name, StringComparer.Ordinal))
                    throw new InputException(TextRules.Shorten(property.Name), $"is not a known field (allowed: {string.Join(", ", allowed)})", InputRule.UnknownField);
                fields[property.Name] = property.Value.ValueKind switch
                {
                    JsonValueKind.String => JsonText.GetString(property.Value, property.Name),
                    JsonValueKind.Null => null,
                    JsonValueKind.True => "true",
                    JsonValueKind.False => "false",
                    JsonValueKind.Number => property.Value.GetRawText(),
                    _ => throw new InputException(property.Name, "must be a string (or a number, true or false)"),
                };
            }
            return new Fields(fields);
        }
    }

    /// <summary>A body's fields as text (null for absent or JSON null).</summary>
    public sealed class Fields(Dictionary<string, string?> values)
    {
        public string? Text(string name) => values.GetValueOrDefault(name);

        /// <summary>True when the body has the field, even as null (a PATCH's "back to the default").</summary>
        public bool Has(string name) => values.ContainsKey(name);

        /// <summary>true or false (as JSON booleans or strings); null when absent.</summary>
        public bool? Flag(string name) => values.GetValueOrDefault(name) switch
        {
            null => null,
            "true" => true,
            "false" => false,
            var v => throw new InputException(name, $"must be true or false (got '{TextRules.Shorten(v)}')"),
        };
    }
}
