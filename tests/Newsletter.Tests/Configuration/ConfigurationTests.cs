using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace Newsletter.Tests.Configuration;

public sealed class ConfigurationTests
{
    private static readonly Dictionary<string, string?> Unreachable = new() { ["ConnectionStrings__Newsletter"] = "Host=127.0.0.1;Port=1;Database=none;Username=x;Password=y;Timeout=2" };

    [Fact]
    public void The_defaults_are_valid()
    {
        Assert.True(new NewsletterOptionsValidator().Validate(null, new NewsletterOptions()).Succeeded);
        Assert.True(new SmtpOptionsValidator().Validate(null, new SmtpOptions()).Succeeded);
    }

    [Theory]
    [InlineData(nameof(NewsletterOptions.PublicUrl), "not a url", "Newsletter__PublicUrl")]
    [InlineData(nameof(NewsletterOptions.PublicUrl), "ftp://example.org", "Newsletter__PublicUrl")]
    [InlineData(nameof(NewsletterOptions.From), "nobody", "Newsletter__From")]
    [InlineData(nameof(NewsletterOptions.ReplyTo), "a@@b", "Newsletter__ReplyTo")]
    [InlineData(nameof(NewsletterOptions.AdminApiKey), "short", "Newsletter__AdminApiKey")]
    [InlineData(nameof(NewsletterOptions.Secret), "too-short", "Newsletter__Secret")]
    [InlineData(nameof(NewsletterOptions.TemplatesDirectory), "/no/such/templates", "Newsletter__TemplatesDirectory")]
    public void A_bad_newsletter_setting_is_reported_by_its_key(string property, string value, string key)
    {
        var options = new NewsletterOptions();
        typeof(NewsletterOptions).GetProperty(property)!.SetValue(options, value);
        var result = new NewsletterOptionsValidator().Validate(null, options);
        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith(key + ":", StringComparison.Ordinal));
    }

    [Fact]
    public void Bad_smtp_settings_are_reported_by_their_keys()
    {
        var result = new SmtpOptionsValidator().Validate(null, new SmtpOptions { Host = "mail.example.org", Port = 0, Username = "only-user", LocalDomain = "not a host", TimeoutSeconds = 0 });
        Assert.Contains(result.Failures!, f => f.StartsWith("Newsletter__Smtp__Port:", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.StartsWith("Newsletter__Smtp__Username and Newsletter__Smtp__Password:", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.StartsWith("Newsletter__Smtp__LocalDomain:", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.StartsWith("Newsletter__Smtp__TimeoutSeconds:", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Newsletter__PublicUrl", "localhost:5080", "Newsletter__PublicUrl")]
    [InlineData("Newsletter__Smtp__Security", "Sometimes", "Newsletter:Smtp:Security")]
    [InlineData("Newsletter__Smtp__Port", "twenty-five", "Newsletter:Smtp:Port")]
    public async Task The_service_refuses_to_start_with_a_bad_value_and_says_which(string key, string value, string named)
    {
        var env = new Dictionary<string, string?>(Unreachable) { [key] = value };

        var result = await NewsletterProcess.RunAsync(NewsletterProcess.TempDirectory(), env, "migrate");

        Assert.NotEqual(0, result.ExitCode);
        var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("newsletter: configuration error: ", line);
        Assert.Contains(named, line);
    }

    [Fact]
    public async Task An_unreachable_database_is_one_clear_line()
    {
        var result = await NewsletterProcess.RunAsync(NewsletterProcess.TempDirectory(), Unreachable, "migrate");
        Assert.NotEqual(0, result.ExitCode);
        Assert.StartsWith("newsletter: Cannot reach PostgreSQL", Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [Fact]
    public void The_service_runs_with_the_workstation_garbage_collector_on_purpose()
    {
        // Server GC sizes its heaps per core and keeps them: on a small machine the RSS grows for nothing.
        using var config = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "newsletter.runtimeconfig.json")));
        var properties = config.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
        Assert.False(properties.GetProperty("System.GC.Server").GetBoolean());
        Assert.False(properties.GetProperty("System.GC.Concurrent").GetBoolean());
    }

    [Fact]
    public void Every_configuration_key_is_documented_in_the_readme()
    {
        var readme = File.ReadAllText(Repository.PathOf("README.md"));
        var missing = ConfigurationKeys.All.Where(k => !readme.Contains($"`{k}`", StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0, "Not in README.md: " + string.Join(", ", missing));
    }

    [Fact]
    public void Docker_compose_wires_postgres_with_a_health_check_mailpit_and_the_service_with_real_keys_only()
    {
        var yaml = new YamlStream();
        using (var reader = new StreamReader(Repository.PathOf("docker-compose.yml")))
            yaml.Load(reader);
        var services = (YamlMappingNode)((YamlMappingNode)yaml.Documents[0].RootNode)["services"];

        var postgres = (YamlMappingNode)services["postgres"];
        Assert.StartsWith("postgres:", ((YamlScalarNode)postgres["image"]).Value);
        Assert.True(postgres.Children.ContainsKey("healthcheck"));
        Assert.StartsWith("axllent/mailpit", ((YamlScalarNode)((YamlMappingNode)services["mailpit"])["image"]).Value);

        var newsletter = (YamlMappingNode)services["newsletter"];
        Assert.True(newsletter.Children.ContainsKey("build"));
        Assert.True(File.Exists(Repository.PathOf("Dockerfile")));
        var environment = (YamlMappingNode)newsletter["environment"];
        var keys = environment.Children.Keys.Cast<YamlScalarNode>().Select(k => k.Value!).ToList();
        var configKeys = keys.Where(k => k.StartsWith("Newsletter__", StringComparison.Ordinal) || k.StartsWith("ConnectionStrings__", StringComparison.Ordinal)).ToList();
        Assert.Contains("ConnectionStrings__Newsletter", configKeys);
        Assert.Contains("Newsletter__Smtp__Host", configKeys);
        var unknown = configKeys.Except(ConfigurationKeys.All).ToList();
        Assert.True(unknown.Count == 0, "Not configuration keys: " + string.Join(", ", unknown));

        // No default secrets: the admin key and the database password must be given, or compose
        // refuses to start (${VAR:?message}); PostgreSQL stays on the compose network.
        string Value(YamlMappingNode map, string key) => ((YamlScalarNode)map[key]).Value!;
        Assert.Matches(@"^\$\{NEWSLETTER_ADMIN_API_KEY:\?[^}]+\}$", Value(environment, "Newsletter__AdminApiKey"));
        Assert.Matches(@"^\$\{POSTGRES_PASSWORD:\?[^}]+\}$", Value((YamlMappingNode)postgres["environment"], "POSTGRES_PASSWORD"));
        Assert.Contains("Password=${POSTGRES_PASSWORD:?", Value(environment, "ConnectionStrings__Newsletter"));
        Assert.False(postgres.Children.ContainsKey("ports"), "PostgreSQL is published on the host");
        var text = File.ReadAllText(Repository.PathOf("docker-compose.yml"));
        Assert.DoesNotContain(":-", text); // no fallback value for any variable
    }
}
