using Newsletter.Digests;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;

namespace Newsletter.Tests.Digests;

/// <summary>Compiled templates are kept on disk by content and reused by the next process, never stale.</summary>
public sealed class TemplateCacheTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), $"newsletter-templates-{Guid.NewGuid():N}");

    public TemplateCacheTests()
    {
        foreach (var file in Directory.EnumerateFiles(Repository.PathOf("templates"), "*.cshtml", SearchOption.AllDirectories))
        {
            var target = Path.Combine(_root, "templates", Path.GetRelativePath(Repository.PathOf("templates"), file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    // With the host's page views, as every verb of the service compiles them.
    private TemplateEngine Engine()
    {
        var options = TestMail.Options(Path.Combine(_root, "templates"));
        options.CompiledTemplatesDirectory = Path.Combine(_root, "compiled");
        return new TemplateEngine(Microsoft.Extensions.Options.Options.Create(options), [NewsletterApp.PageModels]);
    }

    private async Task<string> RenderAsync(TemplateEngine engine)
    {
        var options = TestMail.Options(Path.Combine(_root, "templates"));
        var digest = await new DigestRenderer(engine, Microsoft.Extensions.Options.Options.Create(options)).RenderAsync([TestMail.SampleIssue()], Language.Both);
        return digest.Personalize(new Recipient("김민지", "https://x/unsubscribe/t", "https://x/preferences/t")).Html;
    }

    [Fact]
    public async Task A_second_engine_loads_what_the_first_compiled_and_an_edited_template_is_compiled_again()
    {
        var first = await RenderAsync(Engine());
        var compiled = Directory.GetFiles(Path.Combine(_root, "compiled"), "*.dll");
        Assert.Equal(5, compiled.Length); // the digest, its layout, styles, item and footer
        var written = compiled.ToDictionary(f => f, File.GetLastWriteTimeUtc);

        Assert.Equal(first, await RenderAsync(Engine()));
        Assert.All(written, w => Assert.Equal(w.Value, File.GetLastWriteTimeUtc(w.Key))); // loaded, not compiled again

        var footer = Path.Combine(_root, "templates", "email", "_Footer.cshtml");
        await File.WriteAllTextAsync(footer, (await File.ReadAllTextAsync(footer)).Replace("</td>", "<p>edited footer</p></td>", StringComparison.Ordinal));
        var edited = await RenderAsync(Engine());
        Assert.Contains("edited footer", edited);
        Assert.Equal(6, Directory.GetFiles(Path.Combine(_root, "compiled"), "*.dll").Length);
    }

    [Fact]
    public async Task Every_template_compiles()
    {
        var engine = Engine();
        Assert.Contains("web/_Layout", engine.Keys());
        Assert.Contains("admin/Run", engine.Keys());
        foreach (var key in engine.Keys()) await engine.CompileAsync(key);
        Assert.Equal(engine.Keys().Count, Directory.GetFiles(Path.Combine(_root, "compiled"), "*.dll").Length);
    }

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }
}
