using Microsoft.Extensions.Options;
using System.Collections.Concurrent;
using Newsletter.Configuration;
using RazorLight;
using RazorLight.Razor;

namespace Newsletter.Digests;

/// <summary>
/// RazorLight over the templates folder (<c>templates/</c> next to the binary, or
/// <c>Newsletter__TemplatesDirectory</c>). Each template is read and compiled once per process and
/// cached for its lifetime; later renders reuse the compiled type and never touch the files.
/// </summary>
public sealed class TemplateEngine
{
    /// <summary>Every template under the folder, as keys (<c>email/Digest</c>), partials and layouts included.</summary>
    public IReadOnlyList<string> Keys() => System.IO.Directory.EnumerateFiles(Directory, "*.cshtml", SearchOption.AllDirectories)
        .Select(f => Path.GetRelativePath(Directory, f).Replace('\\', '/')[..^".cshtml".Length])
        .Order(StringComparer.Ordinal)
        .ToList();

    /// <summary>Compiles <paramref name="template"/> (or takes it from the compiled-template cache) without rendering it.</summary>
    public Task CompileAsync(string template) => _engine.CompileTemplateAsync(template);

    private static readonly System.Text.Encodings.Web.HtmlEncoder Encoder =
        System.Text.Encodings.Web.HtmlEncoder.Create(System.Text.Unicode.UnicodeRanges.All);

    private readonly RazorLightEngine _engine;

    public TemplateEngine(IOptions<NewsletterOptions> options) : this(options, [])
    {
    }

    /// <param name="models">Assemblies with more model types (the host's page views) besides this library's.</param>
    public TemplateEngine(IOptions<NewsletterOptions> options, IEnumerable<TemplateModels> models)
    {
        Directory = options.Value.ResolvedTemplatesDirectory;
        var project = new TemplateFolderProject(Directory);
        var assemblies = models.Select(m => m.Assembly).Prepend(typeof(TemplateEngine).Assembly).Distinct().OrderBy(a => a.FullName, StringComparer.Ordinal).ToArray();
        _engine = new RazorLightEngineBuilder()
            .UseProject(project)
            // Templates compile against RazorLight, the runtime and our model types only, not
            // against everything the service references (ASP.NET Core, Quartz, Npgsql, the
            // compiler itself): a fraction of the metadata to load, and of the working set.
            .SetOperatingAssembly(typeof(RazorLightEngine).Assembly)
            .AddMetadataReferences(assemblies.Select(a => Microsoft.CodeAnalysis.MetadataReference.CreateFromFile(a.Location)).ToArray())
            .ExcludeAssemblies("Microsoft.CodeAnalysis.CSharp", "Microsoft.AspNetCore.Razor.Language", "Microsoft.AspNetCore.Mvc.Razor.Extensions",
                "Microsoft.Extensions.DependencyModel", "System.Security.Cryptography.Algorithms", "System.Reflection.Emit.Lightweight",
                "System.Reflection.Metadata", "System.Collections.Immutable", "System.IO.Compression", "System.Private.Xml")
            // Markup characters are escaped, letters (Hangul among them) are written as they are.
            .AddPrerenderCallbacks(page => { if (page is TemplatePageBase p) p.HtmlEncoder = Encoder; })
            // Compiled templates are kept on disk by content: a process whose templates were compiled
            // before (by an earlier start, or by `newsletter templates compile`) never runs the compiler.
            .UseCachingProvider(new CompiledTemplateCache(project, options.Value.ResolvedCompiledTemplatesDirectory, assemblies))
            .Build();
    }

    public string Directory { get; }

    /// <summary>Renders <paramref name="template"/> (a path under the templates folder, without extension) with <paramref name="model"/>.</summary>
    public Task<string> RenderAsync<TModel>(string template, TModel model) => _engine.CompileRenderAsync(template, model);
}

/// <summary>An assembly whose types templates use as models, registered by the host for its page views.</summary>
public sealed record TemplateModels(System.Reflection.Assembly Assembly);

/// <summary>
/// Reads a template from the folder the first time it is asked for and keeps its text. Unlike
/// RazorLight's file-system project it does not watch the files, so a compiled template is never
/// thrown away while the process runs (and a half-edited file cannot break a send in progress).
/// </summary>
internal sealed class TemplateFolderProject(string root) : RazorLightProject
{
    private const string Extension = ".cshtml";
    private readonly ConcurrentDictionary<string, RazorLightProjectItem> _items = new(StringComparer.Ordinal);

    /// <summary>The template's text, or null when it does not exist.</summary>
    public string? TextOf(string templateKey) =>
        GetItemAsync(templateKey).GetAwaiter().GetResult() is TextSourceRazorProjectItem { Exists: true } item ? item.Content : null;

    public override Task<RazorLightProjectItem> GetItemAsync(string templateKey)
    {
        var key = Normalize(templateKey);
        return Task.FromResult(_items.GetOrAdd(key, k =>
        {
            var path = Path.GetFullPath(Path.Combine(root, k));
            // Keys come from our own templates, but never read outside the folder.
            if (!path.StartsWith(Path.GetFullPath(root), StringComparison.Ordinal) || !File.Exists(path))
                return new MissingItem(k);
            return new TextSourceRazorProjectItem(k, File.ReadAllText(path));
        }));
    }

    public override Task<IEnumerable<RazorLightProjectItem>> GetImportsAsync(string templateKey) =>
        Task.FromResult(Enumerable.Empty<RazorLightProjectItem>());

    internal static string Normalize(string key)
    {
        var k = key.Replace('\\', '/').TrimStart('/');
        return k.EndsWith(Extension, StringComparison.Ordinal) ? k : k + Extension;
    }

    private sealed class MissingItem(string key) : RazorLightProjectItem
    {
        public override string Key { get; } = key;

        public override bool Exists => false;

        public override Stream Read() => throw new FileNotFoundException($"Template {Key} does not exist");
    }
}
