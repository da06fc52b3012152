using System.Net;
using AngleSharp.Html.Parser;
using MimeKit;
using Newsletter.Issues;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Digests;

public sealed class PreviewTests
{
    [Fact]
    public async Task Preview_writes_the_html_and_the_whole_message_of_a_draft()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.Issues().ImportAsync(SampleIssue.Document, publish: false);
        var dir = NewsletterProcess.TempDirectory();

        var result = await NewsletterProcess.RunAsync(db, dir, "preview", "--issue", "top-ml-papers-2024-04-22", "--language", "en", "--out", "p.html", "--eml", "p.eml");

        Assert.True(result.ExitCode == 0, result.Error);
        var html = await File.ReadAllTextAsync(Path.Combine(dir, "p.html"));
        Assert.Equal("en", new HtmlParser().ParseDocument(html).DocumentElement.GetAttribute("lang"));
        Assert.Contains("Phi-3 Technical Report", html);
        var message = await MimeMessage.LoadAsync(Path.Combine(dir, "p.eml"));
        Assert.Equal("Top ML Papers of the Week (April 22 – 28, 2024)", message.Subject);
        Assert.Equal("List-Unsubscribe=One-Click", message.Headers["List-Unsubscribe-Post"]);
    }

    [Fact]
    public async Task Preview_of_an_unknown_issue_or_language_fails_naming_the_field()
    {
        await using var db = await TestDatabase.CreateAsync();
        var dir = NewsletterProcess.TempDirectory();

        var unknown = await NewsletterProcess.RunAsync(db, dir, "preview", "--issue", "nope");
        var language = await NewsletterProcess.RunAsync(db, dir, "preview", "--issue", "nope", "--language", "jp");

        Assert.NotEqual(0, unknown.ExitCode);
        Assert.Contains("slug: no issue is called 'nope'", unknown.Error);
        Assert.NotEqual(0, language.ExitCode);
        Assert.Contains("language: must be one of ko, en, both", language.Error);
    }

    [Fact]
    public async Task The_admin_api_previews_an_issue_only_with_the_admin_key()
    {
        await using var db = await TestDatabase.CreateAsync();
        await db.Issues().ImportAsync(SampleIssue.Document, publish: true);
        await using var service = await ServiceProcess.StartAsync(db);
        using var admin = service.Admin();

        var ok = await admin.GetAsync("/api/issues/top-ml-papers-2024-04-22/preview?language=ko");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("text/html", ok.Content.Headers.ContentType?.MediaType);
        var html = await ok.Content.ReadAsStringAsync();
        Assert.Contains("이번 주의 주요 ML 논문", html);
        Assert.DoesNotContain("Phi-3 Technical Report", html);

        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("/api/issues/nope/preview")).StatusCode);
        var badLanguage = await admin.GetAsync("/api/issues/top-ml-papers-2024-04-22/preview?language=fr");
        Assert.Equal(HttpStatusCode.BadRequest, badLanguage.StatusCode);
        Assert.Contains("\"field\":\"language\"", await badLanguage.Content.ReadAsStringAsync());

        var anonymous = await service.Http.GetAsync("/api/issues/top-ml-papers-2024-04-22/preview");
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        using var wrong = new HttpRequestMessage(HttpMethod.Get, "/api/issues/top-ml-papers-2024-04-22/preview") { Headers = { Authorization = new("Bearer", ServiceProcess.AdminKey + "x") } };
        var wrongKey = await service.Http.SendAsync(wrong);
        Assert.Equal(HttpStatusCode.Unauthorized, wrongKey.StatusCode);
        Assert.DoesNotContain("Phi-3", await wrongKey.Content.ReadAsStringAsync());
    }
}
