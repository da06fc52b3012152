using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Digests;

public sealed class SpamAssassinTests
{
    [Theory]
    [InlineData(Language.Ko, false)]
    [InlineData(Language.En, false)]
    [InlineData(Language.Both, false)]
    [InlineData(Language.Ko, true)]
    [InlineData(Language.En, true)]
    [InlineData(Language.Both, true)]
    public async Task The_sample_digest_scores_below_one_and_its_text_and_html_agree(Language language, bool trackedLinks)
    {
        var (path, _) = TestMail.KeyFile();
        var message = await TestMail.MessageAsync(language, TestMail.Dkim(path), tracked: trackedLinks);
        Assert.Equal(trackedLinks, message.HtmlBody!.Contains(TestMail.PublicUrl + "/r/", StringComparison.Ordinal));
        var eml = Path.Combine(NewsletterProcess.TempDirectory(), "digest.eml");
        await File.WriteAllBytesAsync(eml, TestMail.Bytes(message));

        var (score, rules) = await SpamAssassinAsync(eml);

        Assert.True(score < 1.0, $"score {score}: {string.Join(",", rules)}");
        Assert.DoesNotContain(rules, r => r.StartsWith("MPART_ALT_DIFF", StringComparison.Ordinal));
    }

    /// <summary>Runs Debian's spamassassin with local rules only (-L) and returns the score and the rules that fired.</summary>
    private static async Task<(double Score, IReadOnlyList<string> Rules)> SpamAssassinAsync(string eml)
    {
        var start = new ProcessStartInfo("spamassassin") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-L");
        start.ArgumentList.Add("-t");
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("spamassassin is not installed (apt-get install spamassassin; .ci/run does it)", e);
        }
        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
            await process.StandardInput.BaseStream.WriteAsync(await File.ReadAllBytesAsync(eml));
            process.StandardInput.Close();
            await process.WaitForExitAsync();
            var text = Regex.Replace(await output, @"\r?\n[ \t]+", " ");
            var status = Regex.Match(text, @"(?m)^X-Spam-Status: \w+, score=(-?[\d.]+) required=[\d.]+ tests=(\S*)");
            Assert.True(status.Success, "no X-Spam-Status in spamassassin's output");
            return (double.Parse(status.Groups[1].Value, CultureInfo.InvariantCulture), status.Groups[2].Value.Split(',', StringSplitOptions.RemoveEmptyEntries));
        }
    }
}
