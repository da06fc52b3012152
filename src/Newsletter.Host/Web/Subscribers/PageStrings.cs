namespace Newsletter.Web;

/// <summary>The words of the subscriber pages, in Korean and English.</summary>
public sealed record PageStrings
{
    public required string Lang { get; init; }
    public required string OtherLanguage { get; init; }
    public required string SubscribeTitle { get; init; }
    public required string SubscribeIntro { get; init; }
    public required string Email { get; init; }
    public required string Name { get; init; }
    public required string Optional { get; init; }
    public required string Cadence { get; init; }
    public required string Weekly { get; init; }
    public required string WeeklyHint { get; init; }
    public required string Daily { get; init; }
    public required string DailyHint { get; init; }
    public required string Language { get; init; }
    public required string TimeLegend { get; init; }
    public required string TimeZone { get; init; }
    public required string TimeZoneHint { get; init; }
    public required string Hour { get; init; }
    public required string Weekday { get; init; }
    public required string WeekdayHint { get; init; }
    public required IReadOnlyList<string> WeekdayNames { get; init; }
    public required IReadOnlyDictionary<string, string> Regions { get; init; }
    public required Func<int, string> HourName { get; init; }
    public required string Korean { get; init; }
    public required string English { get; init; }
    public required string Both { get; init; }
    public required string SubscribeButton { get; init; }
    public required string HoneypotLabel { get; init; }
    public required string CheckInboxTitle { get; init; }
    public required string CheckInboxBody { get; init; }
    public required string CheckInboxHint { get; init; }
    public required string ConfirmTitle { get; init; }
    public required string ConfirmBody { get; init; }
    public required string ConfirmButton { get; init; }
    public required string ConfirmedTitle { get; init; }
    public required string ConfirmedBody { get; init; }
    public required string NotPendingTitle { get; init; }
    public required string NotPendingBody { get; init; }
    public required string PreferencesTitle { get; init; }
    public required string PreferencesIntro { get; init; }
    public required string Save { get; init; }
    public required string Saved { get; init; }
    public required string UnsubscribeTitle { get; init; }
    public required string UnsubscribeBody { get; init; }
    public required string UnsubscribeButton { get; init; }
    public required string SwitchToWeekly { get; init; }
    public required string SwitchToWeeklyHint { get; init; }
    public required string UnsubscribedTitle { get; init; }
    public required string UnsubscribedBody { get; init; }
    public required string ResubscribeButton { get; init; }
    public required string ResubscribedTitle { get; init; }
    public required string LeaveHint { get; init; }

    public required string CountClicks { get; init; }

    public required string CountClicksHint { get; init; }

    public required string CountClicksPerReaderHint { get; init; }
    public required string PreferencesLink { get; init; }
    public required string NotFoundTitle { get; init; }
    public required string NotFoundBody { get; init; }
    public required string LinkNotValidBody { get; init; }
    public required string BadRequestTitle { get; init; }
    public required string FormExpiredBody { get; init; }
    public required string TooManyTitle { get; init; }
    public required string TooManyBody { get; init; }
    public required string TooLargeBody { get; init; }
    public required string ArchiveTitle { get; init; }

    public required string MostRead { get; init; }
    public required string ArchiveEmpty { get; init; }
    public required string ArchiveLink { get; init; }
    public required string SubscribeLink { get; init; }
    public required string Feed { get; init; }
    public required string ErrorTitle { get; init; }
    public required string ErrorBody { get; init; }
    public required string UnknownActionRule { get; init; }
    public required string NotAFormBody { get; init; }
    public required string FormUnreadableBody { get; init; }

    /// <summary>Rule texts by kind in this language; null: the rule's own (English) words are used.</summary>
    public required IReadOnlyDictionary<Validation.InputRule, string>? Rules { get; init; }

    /// <summary>What a field must be, in this language: "{field label}: {rule}".</summary>
    public string Problem(string fieldLabel, Validation.InputException e) =>
        $"{fieldLabel}: {(Rules is not null && Rules.TryGetValue(e.Kind, out var rule) ? string.Format(System.Globalization.CultureInfo.InvariantCulture, rule, e.Limit) : e.Rule)}";

    public string CadenceName(Newsletter.Subscribers.Cadence cadence) => cadence == Newsletter.Subscribers.Cadence.Daily ? Daily : Weekly;

    /// <summary>A weekday's name (Sunday first, as <see cref="DayOfWeek"/> counts).</summary>
    public string WeekdayName(DayOfWeek day) => WeekdayNames[(int)day];

    public string RegionName(string region) => Regions.GetValueOrDefault(region, region);

    public string LanguageName(Newsletter.Subscribers.Language language) => language switch
    {
        Newsletter.Subscribers.Language.En => English,
        Newsletter.Subscribers.Language.Both => Both,
        _ => Korean,
    };

    public static PageStrings For(string lang) => lang == "en" ? En : Ko;

    public static readonly PageStrings Ko = new()
    {
        Lang = "ko",
        OtherLanguage = "English",
        SubscribeTitle = "뉴스레터 구독",
        SubscribeIntro = "한 주의 주요 논문을 메일로 받아 보세요. 매주 한 번이 기본이며, 매일 받아 볼 수도 있습니다.",
        Email = "이메일 주소",
        Name = "이름",
        Optional = "선택",
        Cadence = "받는 주기",
        Weekly = "매주",
        WeeklyHint = "한 주에 한 번, 그 주의 새 글을 모아서",
        Daily = "매일",
        DailyHint = "새 글이 있는 날에만",
        Language = "언어",
        TimeLegend = "받는 시간",
        TimeZone = "시간대",
        TimeZoneHint = "다이제스트는 이 시간대의 아래 시각에 도착합니다.",
        Hour = "시각",
        Weekday = "요일",
        WeekdayHint = "주간 다이제스트를 받는 요일입니다.",
        WeekdayNames = ["일요일", "월요일", "화요일", "수요일", "목요일", "금요일", "토요일"],
        Regions = new Dictionary<string, string>
        {
            ["Africa"] = "아프리카", ["America"] = "아메리카", ["Antarctica"] = "남극", ["Asia"] = "아시아", ["Atlantic"] = "대서양",
            ["Australia"] = "오스트레일리아", ["Europe"] = "유럽", ["Indian"] = "인도양", ["Pacific"] = "태평양", ["UTC"] = "협정 세계시",
        },
        HourName = h => $"{(h < 12 ? "오전" : "오후")} {(h % 12 == 0 ? 12 : h % 12)}시",
        Korean = "한국어",
        English = "영어",
        Both = "한국어와 영어",
        SubscribeButton = "구독 신청",
        HoneypotLabel = "이 칸은 비워 두세요",
        CheckInboxTitle = "메일함을 확인해 주세요",
        CheckInboxBody = "입력하신 주소로 확인 메일을 보냈습니다. 메일의 버튼을 눌러 구독을 확인하면 다음 발송부터 받아 보실 수 있습니다.",
        CheckInboxHint = "몇 분이 지나도 메일이 없다면 스팸함을 확인해 주세요. 이미 구독 중이라면 새 메일은 보내지 않습니다.",
        ConfirmTitle = "구독을 확인해 주세요",
        ConfirmBody = "아래 버튼을 누르면 구독이 시작됩니다.",
        ConfirmButton = "구독 확인",
        ConfirmedTitle = "구독이 확인되었습니다",
        ConfirmedBody = "다음 발송부터 메일을 보내 드립니다.",
        NotPendingTitle = "확인할 구독이 없습니다",
        NotPendingBody = "이 링크로 확인할 구독 신청이 없습니다. 다시 구독하려면 구독 페이지에서 신청해 주세요.",
        PreferencesTitle = "구독 설정",
        PreferencesIntro = "받는 주기, 언어, 이름을 바꿀 수 있습니다.",
        Save = "저장",
        Saved = "저장했습니다.",
        UnsubscribeTitle = "구독을 해지할까요?",
        UnsubscribeBody = "해지하면 {0}(으)로 가는 {1} 메일이 더 이상 발송되지 않습니다.",
        UnsubscribeButton = "구독 해지",
        SwitchToWeekly = "매주 받기로 바꾸기",
        SwitchToWeeklyHint = "메일이 너무 잦다면, 해지 대신 한 주에 한 번만 받아 보세요.",
        UnsubscribedTitle = "구독이 해지되었습니다",
        UnsubscribedBody = "더 이상 메일을 보내지 않습니다. 실수였다면 다시 구독할 수 있습니다.",
        ResubscribeButton = "다시 구독",
        ResubscribedTitle = "다시 구독했습니다",
        LeaveHint = "더 이상 받고 싶지 않다면:",
        CountClicks = "내 링크 클릭을 집계에 포함",
        CountClicksHint = "어떤 논문이 읽히는지 알기 위해 클릭 수만 셉니다. 누가 눌렀는지는 남기지 않습니다.",
        CountClicksPerReaderHint = "어떤 논문이 읽히는지 알기 위해 구독자별로 클릭을 기록합니다.",
        PreferencesLink = "구독 설정 바꾸기",
        NotFoundTitle = "페이지를 찾을 수 없습니다",
        NotFoundBody = "주소가 잘못되었거나 없어진 페이지입니다.",
        LinkNotValidBody = "이 링크는 올바르지 않거나 유효 기간이 지났습니다. 가장 최근에 받은 메일의 링크를 사용해 주세요.",
        BadRequestTitle = "요청을 처리할 수 없습니다",
        FormExpiredBody = "양식이 만료되었습니다. 페이지를 새로 고친 뒤 다시 시도해 주세요.",
        TooManyTitle = "요청이 너무 많습니다",
        TooManyBody = "잠시 뒤에 다시 시도해 주세요.",
        TooLargeBody = "보낸 양식이 너무 큽니다.",
        ArchiveTitle = "지난 글",
        MostRead = "이번 주 가장 많이 읽힌 논문",
        ArchiveEmpty = "아직 발행된 글이 없습니다.",
        ArchiveLink = "지난 글 보기",
        SubscribeLink = "구독하기",
        Feed = "Atom 피드",
        ErrorTitle = "문제가 생겼습니다",
        ErrorBody = "잠시 뒤에 다시 시도해 주세요.",
        UnknownActionRule = "저장 또는 다시 구독만 할 수 있습니다",
        NotAFormBody = "양식으로 보내 주세요 (application/x-www-form-urlencoded 또는 multipart/form-data).",
        FormUnreadableBody = "보낸 양식을 읽을 수 없습니다. 페이지를 새로 고친 뒤 다시 보내 주세요.",
        Rules = new Dictionary<Validation.InputRule, string>
        {
            [Validation.InputRule.Required] = "꼭 입력해야 합니다",
            [Validation.InputRule.TooLong] = "{0}자 이하로 입력해 주세요",
            [Validation.InputRule.ControlCharacter] = "줄바꿈이나 제어 문자는 쓸 수 없습니다",
            [Validation.InputRule.InvisibleCharacter] = "보이지 않는 문자나 글자 방향을 바꾸는 문자는 쓸 수 없습니다",
            [Validation.InputRule.NotUnicode] = "올바른 유니코드 텍스트가 아닙니다",
            [Validation.InputRule.NotEmail] = "올바른 이메일 주소가 아닙니다 (예: name@example.org)",
            [Validation.InputRule.NotOneOf] = "목록에 있는 값 중에서 골라 주세요",
            [Validation.InputRule.UnknownField] = "이 양식에 없는 항목입니다",
        },
    };

    public static readonly PageStrings En = new()
    {
        Lang = "en",
        OtherLanguage = "한국어",
        SubscribeTitle = "Subscribe to the newsletter",
        SubscribeIntro = "Get the week's top papers by email: once a week by default, or every day if you prefer.",
        Email = "Email address",
        Name = "Name",
        Optional = "optional",
        Cadence = "How often",
        Weekly = "Weekly",
        WeeklyHint = "once a week, everything new that week",
        Daily = "Daily",
        DailyHint = "only on days with something new",
        Language = "Language",
        TimeLegend = "When it arrives",
        TimeZone = "Time zone",
        TimeZoneHint = "Your digest arrives at the hour below in this time zone.",
        Hour = "Hour",
        Weekday = "Weekday",
        WeekdayHint = "The day the weekly digest arrives.",
        WeekdayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
        Regions = new Dictionary<string, string>
        {
            ["Africa"] = "Africa", ["America"] = "Americas", ["Antarctica"] = "Antarctica", ["Asia"] = "Asia", ["Atlantic"] = "Atlantic",
            ["Australia"] = "Australia", ["Europe"] = "Europe", ["Indian"] = "Indian Ocean", ["Pacific"] = "Pacific", ["UTC"] = "Coordinated Universal Time",
        },
        HourName = h => $"{(h % 12 == 0 ? 12 : h % 12)}:00 {(h < 12 ? "AM" : "PM")}",
        Korean = "Korean",
        English = "English",
        Both = "Korean and English",
        SubscribeButton = "Subscribe",
        HoneypotLabel = "Leave this field empty",
        CheckInboxTitle = "Check your inbox",
        CheckInboxBody = "We sent a confirmation mail to the address you entered. Press its button to confirm, and you will get the next mailing.",
        CheckInboxHint = "If nothing arrives within a few minutes, look in your spam folder. If you are already subscribed, no new mail is sent.",
        ConfirmTitle = "Confirm your subscription",
        ConfirmBody = "Press the button to start your subscription.",
        ConfirmButton = "Confirm",
        ConfirmedTitle = "Your subscription is confirmed",
        ConfirmedBody = "You will get the next mailing.",
        NotPendingTitle = "Nothing to confirm",
        NotPendingBody = "There is no sign-up waiting for this link. To subscribe again, use the subscribe page.",
        PreferencesTitle = "Preferences",
        PreferencesIntro = "Change how often you get mail, its language, and your name.",
        Save = "Save",
        Saved = "Saved.",
        UnsubscribeTitle = "Unsubscribe?",
        UnsubscribeBody = "If you unsubscribe, the {1} mail to {0} stops.",
        UnsubscribeButton = "Unsubscribe",
        SwitchToWeekly = "Switch to weekly instead",
        SwitchToWeeklyHint = "Too much mail? Get one digest a week instead of leaving.",
        UnsubscribedTitle = "You are unsubscribed",
        UnsubscribedBody = "We will not mail you again. If this was a mistake, you can subscribe again.",
        ResubscribeButton = "Subscribe again",
        ResubscribedTitle = "You are subscribed again",
        LeaveHint = "No longer want these mails?",
        CountClicks = "Count my clicks on links",
        CountClicksHint = "Only how many readers open each paper is kept, never who.",
        CountClicksPerReaderHint = "Which reader opened which paper is recorded.",
        PreferencesLink = "Change your preferences",
        NotFoundTitle = "Page not found",
        NotFoundBody = "The address is wrong or the page is gone.",
        LinkNotValidBody = "This link is not valid or has expired. Please use the link in the most recent mail you received.",
        BadRequestTitle = "The request could not be processed",
        FormExpiredBody = "The form has expired. Reload the page and try again.",
        TooManyTitle = "Too many requests",
        TooManyBody = "Please try again in a little while.",
        TooLargeBody = "The form sent is too large.",
        ArchiveTitle = "Archive",
        MostRead = "Most read this week",
        ArchiveEmpty = "Nothing has been published yet.",
        ArchiveLink = "Read the archive",
        SubscribeLink = "Subscribe",
        Feed = "Atom feed",
        ErrorTitle = "Something went wrong",
        ErrorBody = "Please try again in a little while.",
        UnknownActionRule = "must be save or resubscribe",
        NotAFormBody = "The form must be sent as application/x-www-form-urlencoded or multipart/form-data.",
        FormUnreadableBody = "The form could not be read. Reload the page and send it again.",
        Rules = null,
    };
}
