using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using Newsletter.Validation;

namespace Newsletter.Web;

/// <summary>
/// Reads a JSON request body strictly: <c>application/json</c> in UTF-8, a size limit, an object,
/// each field once, and only the fields a route knows.
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

    /// <summary>The body's string fields (null for absent or JSON null), refusing unknown or repeated fields and non-strings.</summary>
    public static async Task<Dictionary<string, string?>> ReadFieldsAsync(HttpRequest request, string[] allowed, CancellationToken ct)
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
                    throw new InputException(TextRules.Shorten(property.Name), $"is not a known field (allowed: {string.Join(", ", allowed)})");
                fields[property.Name] = property.Value.ValueKind switch
                {
                    JsonValueKind.String => JsonText.GetString(property.Value, property.Name),
                    JsonValueKind.Null => null,
                    JsonValueKind.True => "true",
                    JsonValueKind.False => "false",
                    _ => throw new InputException(property.Name, "must be a string (or true/false)"),
                };
            }
            return fields;
        }
    }
}
