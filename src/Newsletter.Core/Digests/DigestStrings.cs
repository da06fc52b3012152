namespace Newsletter.Digests;

/// <summary>The fixed wording of a digest in one language.</summary>
public sealed record DigestStrings(
    string Greeting,
    string GreetingAnonymous,
    string Intro,
    string Abstract,
    string ViewInBrowser,
    string WhyYouGetThis,
    string WeeklyOrDaily,
    string Preferences,
    string Unsubscribe,
    string PaperLink,
    string MoreLink,
    string ClicksCounted,
    string ClicksRecorded)
{
    public static DigestStrings Korean { get; } = new(
        Greeting: "{0}님, 안녕하세요.",
        GreetingAnonymous: "안녕하세요.",
        Intro: "이번 호의 논문을 소개합니다.",
        Abstract: "논문 초록",
        ViewInBrowser: "웹에서 보기",
        WhyYouGetThis: "이 메일은 {0} 뉴스레터를 구독하셨기 때문에 보내드렸습니다.",
        WeeklyOrDaily: "주간 또는 일간 수신, 언어를 바꾸려면 구독 설정을 이용하세요.",
        Preferences: "구독 설정",
        Unsubscribe: "구독 해지",
        PaperLink: "논문 링크",
        MoreLink: "더 읽어보기",
        ClicksCounted: "어떤 논문이 읽히는지 알기 위해 링크 클릭 수를 셉니다(누가 눌렀는지는 남기지 않습니다). 구독 설정에서 끌 수 있습니다.",
        ClicksRecorded: "어떤 논문이 읽히는지 알기 위해 구독자별로 링크 클릭을 기록합니다. 구독 설정에서 끌 수 있습니다.");

    public static DigestStrings English { get; } = new(
        Greeting: "Hello {0},",
        GreetingAnonymous: "Hello,",
        Intro: "Here are the papers of this issue.",
        Abstract: "Abstract",
        ViewInBrowser: "View in browser",
        WhyYouGetThis: "You receive this because you subscribed to {0}.",
        WeeklyOrDaily: "To switch between weekly and daily mail, or change the language, open your preferences.",
        Preferences: "Preferences",
        Unsubscribe: "Unsubscribe",
        PaperLink: "Paper",
        MoreLink: "Read more",
        ClicksCounted: "Clicks on these links are counted to see which papers are read, never who clicked; you can turn this off in your preferences.",
        ClicksRecorded: "Clicks on these links are recorded per reader to see which papers are read; you can turn this off in your preferences.");

    public static DigestStrings For(string lang) => lang == "en" ? English : Korean;

    /// <summary>The label shown for a link: the well-known labels are translated, others shown as given.</summary>
    public string LinkLabel(string label) => label.ToLowerInvariant() switch
    {
        "paper" => PaperLink,
        "more" => MoreLink,
        _ => label,
    };
}
