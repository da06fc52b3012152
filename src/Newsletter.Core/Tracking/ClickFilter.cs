namespace Newsletter.Tracking;

/// <summary>
/// Tells a reader's click from a machine's. Every request is redirected whatever the verdict (a
/// scanner that gets no page makes a mail filter distrust the message); only human requests are
/// counted as clicks. The signals, in the order they are checked:
/// <list type="table">
/// <listheader><term>signal</term><description>verdict</description></listheader>
/// <item><term>the method is not GET (link checkers send HEAD)</term><description><c>head</c></description></item>
/// <item><term>the User-Agent is empty or names a link scanner, mail-privacy proxy, preview fetcher or HTTP library (<see cref="MachineAgents"/>)</term><description><c>agent</c></description></item>
/// <item><term>the request came less than <see cref="TooSoonAfterSend"/> after the message was made (no reader is that quick; a gateway scanning on arrival is)</term><description><c>too-soon</c></description></item>
/// <item><term>the same message's links were fetched, <see cref="BurstLinks"/> or more different ones, within <see cref="BurstWindow"/> of the request (decided once that window has passed)</term><description><c>burst</c></description></item>
/// <item><term>the address made more than <c>Newsletter__Tracking__RequestsPerMinute</c> requests in a minute</term><description>answered 429 by the rate limiter, not recorded</description></item>
/// <item><term>none of these</term><description><c>human</c></description></item>
/// </list>
/// </summary>
public static class ClickFilter
{
    public const string Pending = "pending";
    public const string Human = "human";
    public const string Head = "head";
    public const string Agent = "agent";
    public const string TooSoon = "too-soon";
    public const string Burst = "burst";

    public static readonly TimeSpan TooSoonAfterSend = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan BurstWindow = TimeSpan.FromSeconds(2);
    public const int BurstLinks = 3;

    /// <summary>
    /// Parts of User-Agent strings sent by machines that fetch links in mail: gateway scanners
    /// (Microsoft Defender Safe Links' preview fetchers, Mimecast, Proofpoint, Barracuda and others),
    /// mail-privacy and image proxies, link-preview bots, and HTTP libraries. Compared ignoring case.
    /// </summary>
    public static readonly IReadOnlyList<string> MachineAgents =
    [
        "bot", "crawler", "spider", "scanner", "preview", "headless", "phantomjs",
        "microsoft office existence discovery", "ms-office", "msoffice", "safelinks", "bingpreview",
        "mimecast", "proofpoint", "urldefense", "barracuda", "trendmicro", "trend micro", "symantec",
        "forcepoint", "ironport", "fireeye", "sophos", "cisco", "zscaler", "avanan", "checkpoint",
        "googleimageproxy", "ggpht.com", "yahoomailproxy", "feedfetcher", "facebookexternalhit", "whatsapp", "skypeuripreview",
        "python-requests", "python-urllib", "aiohttp", "httpx", "curl/", "wget", "go-http-client", "okhttp", "java/",
        "libwww", "apache-httpclient", "node-fetch", "axios", "postmanruntime",
    ];

    /// <summary>The verdict that can be given as the request arrives; <see cref="Pending"/> for a GET that still has to wait out the burst window.</summary>
    public static string Immediate(string method, string? agent, DateTimeOffset sentAt, DateTimeOffset now)
    {
        if (!HttpMethodIsGet(method)) return Head;
        if (IsMachineAgent(agent)) return Agent;
        if (now - sentAt < TooSoonAfterSend) return TooSoon;
        return Pending;
    }

    private static readonly System.Buffers.SearchValues<string> MachineAgentParts =
        System.Buffers.SearchValues.Create(MachineAgents.ToArray(), StringComparison.OrdinalIgnoreCase);

    public static bool IsMachineAgent(string? agent) =>
        string.IsNullOrWhiteSpace(agent) || agent.AsSpan().ContainsAny(MachineAgentParts);

    private static bool HttpMethodIsGet(string method) => string.Equals(method, "GET", StringComparison.OrdinalIgnoreCase);
}
