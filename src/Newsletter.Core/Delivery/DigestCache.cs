using Newsletter.Digests;
using Newsletter.Issues;
using Newsletter.Subscribers;

namespace Newsletter.Delivery;

/// <summary>
/// The digests a worker has rendered, one per (issues, language), shared by its lanes: a digest
/// is rendered once however many subscribers get it, and at most a few hundred are kept.
/// </summary>
internal sealed class DigestCache(IssueStore issues, DigestRenderer renderer)
{
    private const int Capacity = 256;
    private readonly Dictionary<string, Task<DigestTemplate>> _digests = new();
    private readonly SemaphoreSlim _lock = new(1, 1);

    /// <summary>The digest of these issues (oldest first) in this language, with tracked links or not, rendered on first use.</summary>
    public async Task<DigestTemplate> GetAsync(long[] issueIds, string language, bool tracked, CancellationToken ct)
    {
        tracked &= renderer.TracksClicks; // with tracking off every reader shares the one plain rendering
        var key = $"{language}:{(tracked ? "t" : "-")}:{string.Join(',', issueIds)}";
        Task<DigestTemplate> rendering;
        await _lock.WaitAsync(ct);
        try
        {
            if (!_digests.TryGetValue(key, out rendering!))
            {
                if (_digests.Count > Capacity) _digests.Clear();
                _digests[key] = rendering = RenderAsync(issueIds, language, tracked, ct);
            }
        }
        finally
        {
            _lock.Release();
        }
        return await rendering;
    }

    private async Task<DigestTemplate> RenderAsync(long[] issueIds, string language, bool tracked, CancellationToken ct)
    {
        var ordered = (await issues.GetByIdsAsync(issueIds, ct)).OrderBy(i => i.PublishedAt).ThenBy(i => i.Id).ToList();
        return await renderer.RenderAsync(ordered, Wire.Parse<Language>("language", language), tracked);
    }
}
