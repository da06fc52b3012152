using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using RazorLight;

namespace Newsletter.Digests;

/// <summary>
/// RazorLight over the templates folder (<c>templates/</c> next to the binary, or
/// <c>Newsletter__TemplatesDirectory</c>). Each template is compiled once per process and cached;
/// later renders reuse the compiled type.
/// </summary>
public sealed class TemplateEngine
{
    private readonly RazorLightEngine _engine;

    public TemplateEngine(IOptions<NewsletterOptions> options)
    {
        Directory = options.Value.ResolvedTemplatesDirectory;
        _engine = new RazorLightEngineBuilder()
            .UseFileSystemProject(Directory, extension: ".cshtml")
            .SetOperatingAssembly(typeof(TemplateEngine).Assembly)
            .UseMemoryCachingProvider()
            .Build();
    }

    public string Directory { get; }

    /// <summary>Renders <paramref name="template"/> (a path under the templates folder, without extension) with <paramref name="model"/>.</summary>
    public Task<string> RenderAsync<TModel>(string template, TModel model) => _engine.CompileRenderAsync(template, model);
}
