using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Newsletter.Validation;

namespace Newsletter.Web;

/// <summary>Reads a JSON request body strictly: a size limit, an object, and only the fields a route knows.</summary>
internal static class JsonBody
{
    public const int MaxBytes = 1_000_000;

    public static async Task<string> ReadTextAsync(HttpRequest request, CancellationToken ct)
    {
        if (request.ContentLength > MaxBytes)
            throw new InputException("$", $"the request body must be at most {MaxBytes} bytes");
        using var reader = new StreamReader(request.Body);
        var buffer = new char[MaxBytes + 1];
        var read = await reader.ReadBlockAsync(buffer.AsMemory(), ct);
        if (read > MaxBytes) throw new InputException("$", $"the request body must be at most {MaxBytes} bytes");
        return new string(buffer, 0, read);
    }

    /// <summary>The body's string fields (null for absent or JSON null), refusing unknown fields and non-strings.</summary>
    public static async Task<Dictionary<string, string?>> ReadFieldsAsync(HttpRequest request, string[] allowed, CancellationToken ct)
    {
        var text = await ReadTextAsync(request, ct);
        JsonDocument document;
        try { document = JsonDocument.Parse(text); }
        catch (JsonException e) { throw new InputException("$", $"is not valid JSON (line {e.LineNumber + 1})"); }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw new InputException("$", "must be a JSON object");
            var fields = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!allowed.Contains(property.Name, StringComparer.Ordinal))
                    throw new InputException(property.Name, $"is not a known field (allowed: {string.Join(", ", allowed)})");
                fields[property.Name] = property.Value.ValueKind switch
                {
                    JsonValueKind.String => property.Value.GetString(),
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
