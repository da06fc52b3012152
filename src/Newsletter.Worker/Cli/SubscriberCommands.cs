using System.CommandLine;
using Newsletter.Subscribers;

namespace Newsletter.Worker.Cli;

internal static class SubscriberCommands
{
    public static Command Create()
    {
        var subscriber = new Command("subscriber", "Add and list subscribers");

        var email = new Argument<string>("EMAIL") { Description = "The subscriber's email address" };
        var name = new Option<string?>("--name") { Description = "Display name" };
        var cadence = new Option<string?>("--cadence") { Description = "weekly (default) or daily" };
        var language = new Option<string?>("--language") { Description = "ko (default), en or both" };
        var add = new Command("add", "Add an active subscriber (the admin vouches for the address)") { email, name, cadence, language };
        add.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var request = NewSubscriber.Create(parse.GetValue(email), parse.GetValue(name), parse.GetValue(cadence), parse.GetValue(language));
            var stored = await app.Get<SubscriberStore>().AddActiveAsync(request, token);
            Console.WriteLine($"Added {stored.Email} ({Wire.Name(stored.Cadence)}, {Wire.Name(stored.Language)}).");
            return 0;
        }, ct));
        subscriber.Add(add);

        var list = new Command("list", "List subscribers in the order they joined");
        list.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            Console.WriteLine($"{"EMAIL",-40} {"STATUS",-13} {"CADENCE",-8} {"LANG",-5} {"JOINED",-17} NAME");
            await foreach (var s in app.Get<SubscriberStore>().ListAsync(token))
                Console.WriteLine($"{s.Email,-40} {Wire.Name(s.Status),-13} {Wire.Name(s.Cadence),-8} {Wire.Name(s.Language),-5} {s.CreatedAt:yyyy-MM-dd HH:mm} {s.Name}");
            return 0;
        }, ct));
        subscriber.Add(list);
        return subscriber;
    }
}
