using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Primitives;
using RazorLight;
using RazorLight.Caching;
using RazorLight.Compilation;
using RazorLight.Generation;

namespace Newsletter.Digests;

/// <summary>
/// Keeps compiled templates on disk, named by a hash of the template's text and of the builds of
/// the model types and RazorLight it was compiled against: an edited template or a new build of
/// the service is compiled again, anything else is loaded as it is. Loading a compiled template
/// takes a few milliseconds and no compiler, which keeps Roslyn out of every process but the
/// first (or out of all of them, after <c>newsletter templates compile</c>).
/// </summary>
internal sealed class CompiledTemplateCache(TemplateFolderProject project, string directory, IReadOnlyList<Assembly> models) : ICachingProvider, IPrecompileCallback
{
    // A compiled template is bound to the builds of the model assemblies, RazorLight and the runtime.
    private readonly string Build = string.Join('|',
        models.Select(a => a.ManifestModule.ModuleVersionId.ToString())
            .Append(typeof(RazorLightEngine).Assembly.ManifestModule.ModuleVersionId.ToString())
            .Append(Environment.Version.ToString()));

    private readonly MemoryCachingProvider _memory = new();

    public void CacheTemplate(string key, Func<ITemplatePage> pageFactory, IChangeToken? expirationToken) =>
        _memory.CacheTemplate(key, pageFactory, expirationToken);

    public bool Contains(string key) => _memory.Contains(key) || PathOf(key) is { } path && File.Exists(path);

    public void Remove(string key)
    {
        _memory.Remove(key);
        if (PathOf(key) is { } path) File.Delete(path);
    }

    public TemplateCacheLookupResult RetrieveTemplate(string key)
    {
        var cached = _memory.RetrieveTemplate(key);
        if (cached.Success || PathOf(key) is not { } path || !File.Exists(path)) return cached;
        Type type;
        try
        {
            type = Assembly.Load(File.ReadAllBytes(path)).GetCustomAttribute<RazorLight.Razor.RazorLightTemplateAttribute>()!.TemplateType;
        }
        catch (Exception e) when (e is IOException or BadImageFormatException or NullReferenceException)
        {
            return cached; // unreadable: compile it again
        }
        ITemplatePage Create() => (ITemplatePage)Activator.CreateInstance(type)!;
        _memory.CacheTemplate(key, Create);
        return new TemplateCacheLookupResult(new TemplateCacheItem(key, Create));
    }

    /// <summary>Called by the compiler with a template it just compiled: kept for the next process.</summary>
    public void Invoke(IGeneratedRazorTemplate template, byte[] rawAssembly, byte[] rawSymbolStore)
    {
        if (PathOf(template.TemplateKey) is not { } path) return;
        try
        {
            Directory.CreateDirectory(directory);
            // Written under a temporary name and moved: a process starting meanwhile never loads half a file.
            var temporary = $"{path}.{Environment.ProcessId}.tmp";
            File.WriteAllBytes(temporary, rawAssembly);
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A read-only folder only costs the next process a compilation.
        }
    }

    private string? PathOf(string key)
    {
        var normalized = TemplateFolderProject.Normalize(key);
        if (project.TextOf(normalized) is not { } text) return null;
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{Build}\n{normalized}\n{text}"));
        return Path.Combine(directory, Convert.ToHexStringLower(hash.AsSpan(0, 16)) + ".dll");
    }
}
