using MimeKit;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Validation;

namespace Newsletter.Digests;

/// <summary>Renders an issue (draft or published) as a subscriber would receive it, for an admin to look at.</summary>
public sealed class DigestPreview(IssueStore issues, DigestRenderer renderer, DigestMessageBuilder builder)
{
    /// <exception cref="NotFoundException">No issue has this slug.</exception>
    public async Task<(string Html, MimeMessage Message)> RenderAsync(string slug, Language language, string? recipient = null, CancellationToken ct = default)
    {
        var issue = await issues.GetAsync(slug, ct) ?? throw new NotFoundException("slug", $"no issue is called '{Validation.TextRules.Shorten(slug)}'");
        var digest = await renderer.RenderAsync([issue], language);
        var reader = new Subscriber
        {
            Email = recipient ?? "preview@example.com",
            PublicId = Guid.Empty,
            Language = language,
            Status = SubscriberStatus.Active,
        };
        var built = builder.Build(digest, reader, $"preview/{slug}/{Guid.NewGuid():n}");
        // Read back from the bytes a reader's client gets, so the preview shows exactly what is sent.
        using var wire = new MemoryStream();
        await built.WriteToAsync(FormatOptions.Default, wire, ct);
        wire.Position = 0;
        var message = await MimeMessage.LoadAsync(wire, ct);
        return (message.HtmlBody ?? "", message);
    }
}
