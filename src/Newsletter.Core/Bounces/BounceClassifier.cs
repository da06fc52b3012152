using System.Text.RegularExpressions;

namespace Newsletter.Bounces;

/// <summary>
/// Decides what a failure says, from the receiver's words first and the enhanced status code
/// second (MTAs put 5.1.1 on "blocked as spam" and 5.0.0 on "user unknown" often enough that a
/// code alone misleads). The rules are tried in the order of the table below; the first that
/// matches gives the reason and the kind. Only an explicit statement that the address is dead
/// (or 5.1.1/5.1.2/5.1.6/5.1.10 with nothing that blames the sender) is <see cref="BounceKind.Hard"/>:
/// a subscriber is never suppressed for the sender's trouble.
/// </summary>
public static partial class BounceClassifier
{
    public const string Undefined = "undefined";

    private sealed record Rule(string Reason, BounceKind Kind, Regex Text);

    private static Rule R(string reason, BounceKind kind, string pattern) =>
        new(reason, kind, new Regex(pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Compiled));

    // Order matters: the sender's problems come before the reader's, so "blocked ... user unknown
    // is not the reason" never suppresses anyone; a full mailbox before an unknown one.
    private static readonly Rule[] Rules =
    [
        // Statements about the address that name a block only as one of the possible causes.
        R("hostunknown", BounceKind.Hard, @"the account or domain may not exist"),
        R("spamdetected", BounceKind.Block, @"\bspam\b|junk mail|bulk mail|looks like (spam|unsolicited)|content (was )?rejected|message content|\bUCE\b|virus"),
        R("badreputation", BounceKind.Block, @"reputation|senderscore|sender score|poor (ip|sender)"),
        R("blocked", BounceKind.Block, @"black ?list|block ?list|\bdnsbl\b|\brbl\b|spamhaus|spamcop|barracuda|\bblocked\b|\bbanned\b|my name was rejected|(?<!recipient address rejected: )access denied|client host .* rejected|connection (refused|rejected)|sender (address )?(rejected|denied|refused)|not allowed to send|helo|ehlo"),
        R("authfailure", BounceKind.Block, @"\bspf\b|\bdkim\b|\bdmarc\b|authenticat|unauthenticated|not authori[sz]ed"),
        R("requireptr", BounceKind.Block, @"\bptr\b|reverse dns|reverse lookup|rdns|no (reverse|rdns)|cannot find your hostname|hostname lookup"),
        R("toomanyconn", BounceKind.Block, @"too many (connections|messages|recipients|errors)|rate limit|rate-limit|throttl|try again later|exceeded the (rate|limit)|sending limit"),
        R("norelaying", BounceKind.Block, @"relay(ing)? (access )?(denied|not permitted|not allowed|prohibited)|unable to relay|not (permitted|allowed) to relay|relay not permitted|we do not relay"),
        R("policyviolation", BounceKind.Block, @"polic(y|ies)|prohibited|not permitted|refused by (the )?(administrator|filter)|message (was )?filtered|filtered"),
        R("mesgtoobig", BounceKind.Soft, @"(message|mail) (size|is too (big|large|long))|too (big|large) for|exceeds? (the )?(maximum|size)|size limit"),
        R("mailboxfull", BounceKind.Soft, @"mailbox (is )?full|mail ?box.{0,20}(full|exceeded)|over ?quota|quota (exceeded|full)|exceed(ed|s)? (the |his |her |its )?(storage|quota)|insufficient (storage|disk|space)|full mailbox|not enough (storage|space)|disk full|storage (allocation|limit)|account (is )?full"),
        R("suspend", BounceKind.Soft, @"suspended|disabled|deactivated|inactive|(account|mailbox) (has been |is )?(locked|frozen|expired|closed)|temporarily (unavailable|deferred)|is not (currently )?active|on hold"),
        R("hasmoved", BounceKind.Hard, @"has moved|address (has )?changed|no longer (valid|available|in use|at this)|moved to"),
        R("hostunknown", BounceKind.Hard, @"illegal (host|domain)|host/domain name|domain (is )?(not reachable|unreachable)|\b[a-z0-9-]+(\.[a-z0-9-]+)+ does not exist|couldn'?t find (a|any) mail exchanger|no mail exchanger|host (or domain name )?(not found|unknown)|unknown host|domain (name )?(not found|does not exist|unknown)|unknown domain|no such domain|unrouteable (address|mail domain)|name or service not known|no mx (record|host)|mx (record )?(lookup )?(failed|not found)|nxdomain|invalid domain|domain (is )?not (valid|registered)|non-?existent (host|domain)|could not resolve|dns (error|failure)"),
        R("notaccept", BounceKind.Hard, @"does not accept (e-?)?mail|accepts no mail|null mx|not accepting (any )?mail"),
        R("userunknown", BounceKind.Hard, @"user (unknown|not found|doesn'?t exist|does not exist)|unknown (user|recipient|address|local[- ]part|mailbox)|no such (user|recipient|mailbox|address|account|person)|(recipient|mailbox|address|account|user) (does not|doesn'?t|did not) exist|(recipient|mailbox|address|user|account) (not found|unknown|unavailable|invalid)|invalid (recipient|mailbox|address|user)|(mailbox|account) (is )?(not (found|valid|available))|not (a )?valid (recipient|mailbox|user|address)|no mailbox|unrouteable address|address rejected|recipient rejected|is not a valid|bad destination mailbox|no (valid )?(recipients|account)|undeliverable address|not our customer|no longer exists|doesn't have a|unknown or illegal alias|addressee unknown|not listed in|unknown in (relay|virtual|local)|user_unknown|mailbox (name )?not allowed|mailbox unavailable|ディレクトリのリストにありません|ディレクトリには見つかりません|見つかりません|存在しません|not recognized|not listed in (the )?(domino|public name|directory)|invalid (final delivery )?userid|no such (local )?user"),
        R("expired", BounceKind.Soft, @"expired|too long in (the )?queue|in the queue too long|retry (time(out)?|period) (exceeded|expired)|delivery time expired|could not be delivered within|gave up|giving up|undeliverable for \d|for more than \d+ (hours|days)|deferred for|timed? ?out|unable to deliver .* for"),
        R("networkerror", BounceKind.Soft, @"network|connection (timed out|reset|lost|closed)|could not connect|unable to connect|no route|temporary (failure|error)|loop(s)? (back|detected)|mail loop|too many hops"),
        R("systemerror", BounceKind.Soft, @"system (error|failure)|internal (server )?error|local error|server error|service (is )?(not )?(available|unavailable)|out of memory|i/o error"),
    ];

    /// <summary>Words that say a text is a report of a failed delivery (not a reader's own message).</summary>
    public static bool LooksLikeBounce(string text) => BounceWords().IsMatch(text);

    public static BounceVerdict Classify(string? recipient, string? status, string? diagnostic, string text, bool delayed)
    {
        if (status?.StartsWith('2') == true)
            return new BounceVerdict(recipient, status, null, BounceKind.NotABounce, "delivered", Shorten(diagnostic));
        var said = string.Join("\n", new[] { diagnostic, text }.Where(t => !string.IsNullOrEmpty(t)));
        var reply = ReplyCode().Match(diagnostic ?? said) is { Success: true } r ? r.Groups[1].Value : null;
        var words = diagnostic ?? FirstLines(text);
        // The receiver's own words first (the diagnostic), then the report around them: a report's
        // general text ("may be blacklisted, or may not exist") must not outvote the receiver.
        // A recipient's diagnostic speaks for that recipient alone: the report's text around it may be
        // about the next recipient.
        string?[] sources = diagnostic is null ? [ReceiverLines(text), text] : [diagnostic];
        foreach (var quoted in sources)
        {
            if (string.IsNullOrEmpty(quoted)) continue;
            // Addresses say nothing about the failure (and "filtered@..." must not read as a filter).
            var source = BounceParser.AddressPattern().Replace(quoted, "<address>");
            foreach (var rule in Rules)
            {
                if (!rule.Text.IsMatch(source)) continue;
                if (rule.Kind == BounceKind.Hard && (status?.StartsWith('4') == true || delayed))
                    return new BounceVerdict(recipient, status, reply, BounceKind.Soft, rule.Reason, Shorten(words));
                // A recipient refused after the message was sent (at DATA; not a pipelined RCPT reply
                // that arrives after DATA was written) passed the address check: the address is
                // alive and a filter on the receiver's side refused the message.
                if (rule.Reason == "userunknown" && AfterData().IsMatch(said) && !NoAccount().IsMatch(source))
                    return new BounceVerdict(recipient, status, reply, BounceKind.Soft, "filtered", Shorten(words));
                // Refused after MAIL FROM: the words are about the sender's address or domain.
                if (rule.Kind == BounceKind.Hard && AfterMailFrom().IsMatch(said))
                    return new BounceVerdict(recipient, status, reply, BounceKind.Block, "rejected", Shorten(words));
                // "User unknown" is taken at its word when something backs it: an address status code
                // (x.1.x), the server saying it in reply to RCPT TO, or a mail system's own directory
                // lookup. A bare relayed text from no known stage is what content filters answer to
                // a message they refuse; such a reader is counted as a soft bounce (suppressed after
                // SoftLimit of them), never dropped on one unverified sentence.
                if (rule.Reason == "userunknown" && !AddressStatus().IsMatch(status ?? "") && !AddressStatus().IsMatch(source)
                    && !AtRcpt().IsMatch(said) && !DirectoryVerdict().IsMatch(source))
                    return new BounceVerdict(recipient, status, reply, BounceKind.Soft, "filtered", Shorten(words));
                return new BounceVerdict(recipient, status, reply, rule.Kind, rule.Reason, Shorten(words));
            }
        }
        var (reason, byCode) = FromStatus(status, reply, delayed);
        return new BounceVerdict(recipient, status, reply, byCode, reason, Shorten(words));
    }

    /// <summary>The reason the status code alone gives (RFC 3463), when the words said nothing.</summary>
    private static (string Reason, BounceKind Kind) FromStatus(string? status, string? reply, bool delayed)
    {
        if (delayed) return ("expired", BounceKind.Soft);
        switch (status)
        {
            case "5.1.1" or "5.1.0" or "5.1.3": return ("userunknown", BounceKind.Hard);
            case "5.1.2": return ("hostunknown", BounceKind.Hard);
            case "5.1.6": return ("hasmoved", BounceKind.Hard);
            case "5.1.10": return ("notaccept", BounceKind.Hard);
            case "5.2.1": return ("suspend", BounceKind.Soft);
            case "5.2.2" or "4.2.2": return ("mailboxfull", BounceKind.Soft);
            case "5.3.4" or "5.2.3": return ("mesgtoobig", BounceKind.Soft);
            case "4.4.7" or "5.4.7": return ("expired", BounceKind.Soft);
            case "5.7.1" or "5.7.0": return ("rejected", BounceKind.Block);
            case { } s when s.StartsWith("5.7.", StringComparison.Ordinal): return ("securityerror", BounceKind.Block);
            case { } s when s.StartsWith("4.", StringComparison.Ordinal): return ("systemerror", BounceKind.Soft);
            case { } s when s.StartsWith("5.4.", StringComparison.Ordinal) || s.StartsWith("5.3.", StringComparison.Ordinal): return ("networkerror", BounceKind.Soft);
            case { } s when s.StartsWith("5.", StringComparison.Ordinal): return ("rejected", BounceKind.Soft);
        }
        return reply switch
        {
            "550" or "551" or "553" => ("rejected", BounceKind.Soft),
            "552" => ("mailboxfull", BounceKind.Soft),
            not null when reply.StartsWith('4') => ("systemerror", BounceKind.Soft),
            _ => (Undefined, BounceKind.Soft),
        };
    }

    /// <summary>The lines of a report that quote the receiving server (a reply code, a status code, a transcript line).</summary>
    private static string ReceiverLines(string text)
    {
        // Each with the line before it, which often says what the reply was about ("my name was rejected").
        var lines = text.Split('\n');
        var picked = new List<string>();
        for (var i = 0; i < lines.Length; i++)
            if (ReceiverLine().IsMatch(lines[i]))
            {
                if (i > 0 && !ReceiverLine().IsMatch(lines[i - 1])) picked.Add(lines[i - 1]);
                picked.Add(lines[i]);
            }
        return string.Join("\n", picked);
    }

    private static string FirstLines(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Take(6);
        return string.Join(" ", lines);
    }

    private static string? Shorten(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var t = Whitespace().Replace(text, " ").Trim();
        return t.Length <= 300 ? t : t[..300];
    }

    [GeneratedRegex(@"\b([45]\d\d)[ -]")]
    private static partial Regex ReplyCode();

    [GeneratedRegex(@"undeliver|could not be delivered|couldn't be delivered|delivery (to the following )?(recipient|address)(es)?( has)? failed|permanent (error|failure)|failed (permanently|recipient)|not (be )?delivered|delivery failed|returned mail|mailer-daemon|\b5\d\d[ -]|\b5\.\d{1,3}\.\d{1,3}\b|\b4\.\d{1,3}\.\d{1,3}\b|unable to deliver|was not delivered|delivery has failed|failure notice|non-delivery|rejected|giving up|given up|unknown user|user unknown|mailbox (is )?full|quota", RegexOptions.IgnoreCase)]
    private static partial Regex BounceWords();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"(^\s*<<< )|\b[45]\d\d[ -]|\b[45]\.\d{1,3}\.\d{1,3}\b")]
    private static partial Regex ReceiverLine();

    [GeneratedRegex(@"\b[45]\.1\.([1-9]|[1-9]\d{1,2})\b")]
    private static partial Regex AddressStatus();

    /// <summary>A mail system's own verdict from its directory or local delivery, not a relayed reply.</summary>
    [GeneratedRegex(@"not listed in|recipient name is not recognized|\(000C05A6\)|invalid final delivery userid|no valid recipients|doesn'?t have an? \S+ account|mail\.local: unknown user|ディレクトリ|invalid recipient|unknown or illegal alias|addressee unknown", RegexOptions.IgnoreCase)]
    private static partial Regex DirectoryVerdict();

    [GeneratedRegex(@"(after|in reply to) MAIL FROM|>>> MAIL FROM", RegexOptions.IgnoreCase)]
    private static partial Regex AfterMailFrom();

    [GeneratedRegex(@"(after|in reply to|did not like our) RCPT|>>> RCPT TO|RCPT TO command|RCPT_TO", RegexOptions.IgnoreCase)]
    private static partial Regex AtRcpt();

    [GeneratedRegex(@"doesn'?t have an? \S+ account", RegexOptions.IgnoreCase)]
    private static partial Regex NoAccount();

    [GeneratedRegex(@"(after|in reply to) end of data|in reply to DATA|>>> DATA\s*\n\s*<<< [45]\d\d(?![\s\S]{0,300}(Need RCPT|no valid recipients|All RCPT commands were rejected|must precede DATA))|SMTP command\s*\n\s*DATA\b|\bDATA command", RegexOptions.IgnoreCase)]
    private static partial Regex AfterData();
}
