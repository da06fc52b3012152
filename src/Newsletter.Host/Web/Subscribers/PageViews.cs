using Newsletter.Issues;
using Newsletter.Subscribers;

namespace Newsletter.Web;

/// <summary>A hidden antiforgery field for a form.</summary>
public sealed record FormToken(string FieldName, string Value);

/// <summary>A form of one button (and hidden fields) posting to <see cref="Action"/>.</summary>
public sealed record ButtonForm(string Action, string Button, bool Primary, IReadOnlyList<(string Name, string Value)> Hidden, string? Hint = null);

/// <summary>What every page shares: the language, its words, the title and the antiforgery field.</summary>
public abstract class PageView
{
    public required PageStrings S { get; init; }

    public required string Title { get; init; }

    public required string NewsletterName { get; init; }

    public FormToken? Token { get; init; }

    /// <summary>The same page in the other language, when the page has one.</summary>
    public string? OtherLanguageUrl { get; init; }

    /// <summary>Shown in the page's <c>robots</c> meta: pages reached by a personal link are never indexed.</summary>
    public bool Personal { get; init; }
}

/// <summary>A heading, some text, optional links and one-button forms: most pages.</summary>
public sealed class MessagePage : PageView
{
    public IReadOnlyList<string> Paragraphs { get; init; } = [];

    public IReadOnlyList<(string Text, string Href)> Links { get; init; } = [];

    public IReadOnlyList<ButtonForm> Forms { get; init; } = [];

    /// <summary>"alert" for errors, "status" for confirmations: read out by screen readers.</summary>
    public string Role { get; init; } = "status";
}

public sealed class SubscribePage : PageView
{
    public string Email { get; init; } = "";

    public string Name { get; init; } = "";

    public Cadence Cadence { get; init; } = Cadence.Weekly;

    public Language Language { get; init; } = Language.Ko;

    public required DeliveryTimeFields Time { get; init; }

    /// <summary>The field in error (email, name, cadence, language, time_zone, hour, weekday) and what is wrong.</summary>
    public (string Field, string Message)? Error { get; init; }
}

public sealed class PreferencesPage : PageView
{
    public required Subscriber Subscriber { get; init; }

    /// <summary>What the service records of clicks; the page offers the opt-out unless it is off.</summary>
    public Newsletter.Configuration.ClickTrackingMode ClickTracking { get; init; }

    public required string Action { get; init; }

    public required string UnsubscribeAction { get; init; }

    public required DeliveryTimeFields Time { get; init; }

    public string? Notice { get; init; }

    public (string Field, string Message)? Error { get; init; }
}

public sealed class ArchivePage : PageView
{
    public required IReadOnlyList<(string Slug, string Title, string? Date)> Issues { get; init; }

    public required string Lang { get; init; }
}

public sealed class IssuePage : PageView
{
    public required Issue Issue { get; init; }

    public required Language Language { get; init; }

    public required string? Period { get; init; }

    /// <summary>The numbers (from 1) of the most read papers, most first; empty unless <c>Newsletter__Archive__ShowMostRead</c>.</summary>
    public IReadOnlyList<int> MostRead { get; init; } = [];
}
