using Newsletter.Subscribers;

namespace Newsletter.Issues;

/// <summary>A text in Korean, English or both; at least one is present.</summary>
public sealed record LocalizedText(string? Ko, string? En)
{
    /// <summary>The text for a reader of <paramref name="language"/>; falls back to the other language when one is missing.</summary>
    public string For(Language language) => language == Language.En ? En ?? Ko ?? "" : Ko ?? En ?? "";

    /// <summary>The versions a reader of <paramref name="language"/> sees, each with its language tag (both: Korean, then English).</summary>
    public IEnumerable<(string Lang, string Text)> Versions(Language language)
    {
        if (language == Language.Both)
        {
            if (Ko is not null) yield return ("ko", Ko);
            if (En is not null) yield return ("en", En);
        }
        else
        {
            var lang = language == Language.En ? (En is null ? "ko" : "en") : (Ko is null ? "en" : "ko");
            yield return (lang, For(language));
        }
    }
}

public sealed record IssueLink(string Label, string Url);

/// <summary>One paper of an issue.</summary>
public sealed record IssueItem(LocalizedText Title, LocalizedText Summary, LocalizedText? Abstract, IReadOnlyList<IssueLink> Links);

public enum IssueStatus { Draft, Published }

/// <summary>A published post (or a draft of one): a bilingual title and intro, and ordered paper items.</summary>
public sealed record Issue(
    long Id,
    string Slug,
    LocalizedText Title,
    LocalizedText? Intro,
    DateOnly? PeriodFrom,
    DateOnly? PeriodTo,
    IReadOnlyList<IssueItem> Items,
    IssueStatus Status,
    DateTime? PublishedAt,
    DateTime CreatedAt);
