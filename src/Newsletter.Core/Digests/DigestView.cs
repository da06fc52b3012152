using Newsletter.Issues;
using Newsletter.Subscribers;

namespace Newsletter.Digests;

/// <summary>
/// What the digest templates see. It holds only what is the same for every subscriber of one
/// (content, language) pair; the per-subscriber parts are <see cref="Personal"/> markers that the
/// renderer fills in for each recipient after the shared part has been rendered once.
/// </summary>
public sealed class DigestView
{
    public required Language Language { get; init; }

    /// <summary>The <c>lang</c> of the document: <c>ko</c> for Korean and for both, <c>en</c> for English.</summary>
    public string DocumentLang => Language == Language.En ? "en" : "ko";

    public required string Subject { get; init; }

    public required string Preheader { get; init; }

    public required string NewsletterName { get; init; }

    public required IReadOnlyList<IssueView> Issues { get; init; }

    /// <summary>Footer and label texts in the reader's language(s).</summary>
    public required IReadOnlyList<(string Lang, DigestStrings Strings)> Footers { get; init; }

    public DigestStrings Strings => Footers[0].Strings;

    /// <summary>
    /// The footer line that says clicks are counted and how to stop it, per footer language; empty
    /// when this digest's links are not tracked.
    /// </summary>
    public IReadOnlyList<string> ClicksNotice { get; init; } = [];

    public PersonalMarkers Personal { get; init; } = new();

    /// <summary>The tracked links, in the order of their markers.</summary>
    public IReadOnlyList<LinkPlace> TrackedLinks { get; init; } = [];
}

/// <summary>Where a tracked link sits: the issue, the paper (from 0) and the link within the paper (from 0).</summary>
public readonly record struct LinkPlace(long IssueId, int Item, int Link);

public sealed record IssueView(long Id, string Slug, IReadOnlyList<(string Lang, string Text)> Title, IReadOnlyList<(string Lang, string Text)> Intro,
    string? Period, string WebUrl, IReadOnlyList<ItemView> Items);

public sealed record ItemView(int Number, IReadOnlyList<(string Lang, string Text)> Title, IReadOnlyList<(string Lang, string Text)> Summary,
    IReadOnlyList<(string Lang, string Text)> Abstract, IReadOnlyList<IssueLink> Links)
{
    /// <summary>What each link's href is: its URL, or the marker of its tracked, per-reader URL.</summary>
    public IReadOnlyList<string> Hrefs { get; init; } = Links.Select(l => l.Url).ToList();
}

/// <summary>The per-subscriber values a digest holds.</summary>
public enum PersonalValue { UnsubscribeUrl, PreferencesUrl, GreetingKo, GreetingEn, TrackedLink }

/// <summary>
/// Placeholders the templates print where a per-subscriber value belongs. Each rendering gets its
/// own random nonce in every marker, so no issue text, link or name can produce a marker: content
/// is stored before the nonce exists.
/// </summary>
public sealed class PersonalMarkers
{
    public PersonalMarkers()
    {
        var nonce = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12));
        Prefix = $"%%NL-{nonce}:";
        Unsubscribe = Prefix + "UNSUBSCRIBE-URL%%";
        Preferences = Prefix + "PREFERENCES-URL%%";
        GreetingKo = Prefix + "GREETING-KO%%";
        GreetingEn = Prefix + "GREETING-EN%%";
        _all = [(Unsubscribe, PersonalValue.UnsubscribeUrl, 0), (Preferences, PersonalValue.PreferencesUrl, 0),
            (GreetingKo, PersonalValue.GreetingKo, 0), (GreetingEn, PersonalValue.GreetingEn, 0)];
    }

    private readonly List<(string Marker, PersonalValue Value, int Index)> _all;

    /// <summary>A marker for the tracked URL of the digest's <paramref name="index"/>th tracked link.</summary>
    public string Link(int index)
    {
        var marker = $"{Prefix}LINK-{index}%%";
        _all.Add((marker, PersonalValue.TrackedLink, index));
        return marker;
    }

    /// <summary>What every marker of this rendering starts with.</summary>
    public string Prefix { get; }

    public string Unsubscribe { get; }

    public string Preferences { get; }

    public string GreetingKo { get; }

    public string GreetingEn { get; }

    /// <summary>Every marker and the value it stands for (with the link's index for a tracked link).</summary>
    public IReadOnlyList<(string Marker, PersonalValue Value, int Index)> All => _all;

    /// <summary>The greeting line in <paramref name="lang"/> ("Hello Jane," or "Hello,").</summary>
    public string Greeting(string lang) => lang == "en" ? GreetingEn : GreetingKo;
}

/// <summary>The model of the item partial: one paper and the reader's wording.</summary>
public sealed record ItemModel(ItemView Item, DigestStrings Strings);
