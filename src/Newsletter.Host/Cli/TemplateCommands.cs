using System.CommandLine;
using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Newsletter.Configuration;
using Newsletter.Digests;

namespace Newsletter.Cli;

internal static class TemplateCommands
{
    public static Command Create()
    {
        var templates = new Command("templates", "Check and compile the RazorLight templates");
        var compile = new Command("compile",
            "Compile every template (mail, pages, dashboard) and keep the results for the service; reports the first template that does not compile. Needs no database.");
        compile.SetAction(async (_, ct) =>
        {
            // Configuration as the service reads it, without starting anything.
            var configuration = new ConfigurationBuilder()
                .SetBasePath(Directory.GetCurrentDirectory())
                .AddJsonFile("appsettings.json", optional: true)
                .AddEnvironmentVariables()
                .Build();
            var options = configuration.GetSection(NewsletterOptions.Section).Get<NewsletterOptions>() ?? new NewsletterOptions();
            var engine = new TemplateEngine(Microsoft.Extensions.Options.Options.Create(options), [NewsletterApp.PageModels]);
            var watch = Stopwatch.StartNew();
            var keys = engine.Keys();
            foreach (var key in keys)
            {
                ct.ThrowIfCancellationRequested();
                try
                {
                    await engine.CompileAsync(key);
                }
                catch (RazorLight.Compilation.TemplateCompilationException e)
                {
                    await Console.Error.WriteLineAsync($"newsletter: templates/{key}.cshtml: {e.Message.Trim()}");
                    return 2;
                }
            }
            Console.WriteLine($"Compiled {keys.Count} templates from {engine.Directory} into {options.ResolvedCompiledTemplatesDirectory} in {watch.Elapsed.TotalSeconds:0.0} s.");
            return 0;
        });
        templates.Add(compile);
        return templates;
    }
}
