using System.CommandLine;
using Microsoft.Extensions.Options;
using MimeKit;
using Newsletter.Configuration;
using Newsletter.Delivery;
using Newsletter.Digests;
using Newsletter.Subscribers;
using Newsletter.Validation;
using Spectre.Console;

namespace Newsletter.Cli;

/// <summary><c>newsletter send ...</c>: start, watch and steer runs against the configured database.</summary>
internal static class SendCommands
{
    public static Command Create()
    {
        var send = new Command("send", "Start, watch, pause, resume and cancel sends");
        send.Add(Digest(Cadence.Daily));
        send.Add(Digest(Cadence.Weekly));
        send.Add(Broadcast());
        send.Add(Test());
        send.Add(Status());
        send.Add(Control("pause", "Pause a run: nothing more is sent until it is resumed", (l, id, ct) => l.PauseAsync(id, "paused by an operator", ct)));
        send.Add(Control("resume", "Resume a paused run where it stopped", (l, id, ct) => l.ResumeAsync(id, ct)));
        send.Add(Resend());
        send.Add(Control("cancel", "Cancel a run; its unsent issues go into the subscribers' next digest", (l, id, ct) => l.CancelAsync(id, ct)));
        return send;
    }

    private static (Option<bool> Deliver, Option<bool> Wait) RunOptions() => (
        new Option<bool>("--deliver") { Description = "Also deliver the run from this process (no running service needed)" },
        new Option<bool>("--wait") { Description = "Wait until the run is finished, showing its progress" });

    private static Command Digest(Cadence cadence)
    {
        var (deliver, wait) = RunOptions();
        var name = Wire.Name(cadence);
        var command = new Command(name, $"Start the {name} digest run now (a second call while it is open returns the open run)") { deliver, wait };
        command.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var (run, created) = await app.Get<SendLedger>().StartDigestAsync(cadence, null, token);
            return await FollowAsync(app, run, created, parse.GetValue(deliver), parse.GetValue(wait), token);
        }, ct));
        return command;
    }

    private static Command Broadcast()
    {
        var slug = new Argument<string>("SLUG") { Description = "The published issue to send" };
        var (deliver, wait) = RunOptions();
        var command = new Command("issue", "Broadcast one published issue now to every active subscriber who has not received it") { slug, deliver, wait };
        command.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var (run, created) = await app.Get<SendLedger>().StartBroadcastAsync(parse.GetValue(slug)!, token);
            return await FollowAsync(app, run, created, parse.GetValue(deliver), parse.GetValue(wait), token);
        }, ct));
        return command;
    }

    private static Command Test()
    {
        var slug = new Argument<string>("SLUG") { Description = "The issue to send (draft or published)" };
        var to = new Option<string>("--to") { Description = "Where to send the preview", Required = true };
        var language = new Option<string?>("--language") { Description = "ko, en or both (default both)" };
        var command = new Command("test", "Send one preview message of an issue to any address, outside the ledger") { slug, to, language };
        command.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var address = EmailAddress.Parse("to", parse.GetValue(to));
            var lang = parse.GetValue(language) is { } l ? Wire.Parse<Language>("language", l) : Language.Both;
            var (_, message) = await app.Get<DigestPreview>().RenderAsync(parse.GetValue(slug)!, lang, address, token);
            var transport = app.Get<IMailTransport>();
            await transport.SendAsync(message, app.Get<IOptions<NewsletterOptions>>().Value.FromMailbox, new MailboxAddress("", address), token);
            Console.WriteLine($"Sent a test of {parse.GetValue(slug)} to {address} ({transport.Destination}).");
            return 0;
        }, ct));
        return command;
    }

    private static Command Status()
    {
        var run = new Argument<long?>("RUN") { Description = "Run id (default: the recent runs)", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("status", "Show a run's counts, or the recent runs") { run };
        command.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var ledger = app.Get<SendLedger>();
            if (parse.GetValue(run) is { } id)
            {
                var summary = await ledger.GetAsync(id, token) ?? throw new NotFoundException("run", $"no run has id {id}");
                Console.WriteLine(Describe(summary));
                return 0;
            }
            foreach (var summary in await ledger.ListAsync(20, token)) Console.WriteLine(Describe(summary));
            return 0;
        }, ct));
        return command;
    }

    private static Command Resend()
    {
        var run = new Argument<long>("RUN") { Description = "Run id" };
        var failed = new Option<bool>("--failed") { Description = "Send the failed deliveries again" };
        var uncertain = new Option<bool>("--uncertain") { Description = "Send the uncertain deliveries again (they may already have arrived)" };
        var (deliver, wait) = RunOptions();
        var command = new Command("resend", "Queue a run's failed or uncertain deliveries again, deliberately") { run, failed, uncertain, deliver, wait };
        command.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            var (summary, requeued) = await app.Get<SendLedger>().ResendAsync(parse.GetValue(run), parse.GetValue(failed), parse.GetValue(uncertain), token);
            Console.WriteLine($"Queued {requeued} deliveries of run {summary.Id} again.");
            return await FollowAsync(app, summary, created: false, parse.GetValue(deliver), parse.GetValue(wait), token);
        }, ct));
        return command;
    }

    private static Command Control(string name, string description, Func<SendLedger, long, CancellationToken, Task<RunSummary>> change)
    {
        var run = new Argument<long>("RUN") { Description = "Run id" };
        var command = new Command(name, description) { run };
        command.SetAction((parse, ct) => NewsletterCli.WithAppAsync(async (app, token) =>
        {
            Console.WriteLine(Describe(await change(app.Get<SendLedger>(), parse.GetValue(run), token)));
            return 0;
        }, ct));
        return command;
    }

    private static async Task<int> FollowAsync(NewsletterApp app, RunSummary run, bool created, bool deliver, bool wait, CancellationToken ct)
    {
        Console.WriteLine(created
            ? $"Started run {run.Id} ({Label(run)}) with {run.Total} deliveries."
            : $"Run {run.Id} ({Label(run)}) is already {run.Status}; following it.");
        var delivering = deliver ? app.Get<DeliveryEngine>().DeliverRunAsync(run.Id, ct) : Task.CompletedTask;
        if (deliver || wait)
            run = await WatchAsync(app.Get<SendLedger>(), run, delivering, ct);
        await delivering;
        Console.WriteLine(Describe((await app.Get<SendLedger>().GetAsync(run.Id, ct))!));
        return 0;
    }

    /// <summary>Follows a run until it is finished (or, when only delivering, until nothing is due): a live bar on a terminal, a line per change otherwise.</summary>
    private static async Task<RunSummary> WatchAsync(SendLedger ledger, RunSummary run, Task delivering, CancellationToken ct)
    {
        var started = DateTime.UtcNow;
        bool Finished(RunSummary r) => !r.IsOpen || (delivering.IsCompleted && r.Retrying == 0 && r.Queued == 0) || r.State == RunStatus.Paused;
        if (AnsiConsole.Profile.Capabilities.Interactive && !Console.IsOutputRedirected)
        {
            await AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .StartAsync(async progress =>
                {
                    var bar = progress.AddTask($"run {run.Id}", maxValue: Math.Max(1, run.Total));
                    while (true)
                    {
                        run = (await ledger.GetAsync(run.Id, ct))!;
                        var handled = run.Total - run.Queued - run.Retrying;
                        var rate = handled / Math.Max(0.001, (DateTime.UtcNow - started).TotalSeconds);
                        bar.Description = $"run {run.Id}: {run.Sent} sent, {run.Retrying} retrying, {run.Failed} failed, {run.Uncertain} uncertain, {rate:0}/s";
                        bar.Value = handled;
                        if (Finished(run)) break;
                        await Task.Delay(500, ct);
                    }
                });
            return run;
        }
        var last = "";
        while (true)
        {
            run = (await ledger.GetAsync(run.Id, ct))!;
            var line = Describe(run);
            if (line != last) Console.WriteLine(line);
            last = line;
            if (Finished(run)) return run;
            await Task.Delay(1000, ct);
        }
    }

    private static string Label(RunSummary r) => r.Kind == "broadcast" ? $"broadcast of {r.Issue}" : r.Kind;

    internal static string Describe(RunSummary r) =>
        $"run {r.Id} {Label(r)}: {r.Status}{(r.PauseReason is { } why ? $" ({why})" : "")}, total {r.Total}, queued {r.Queued}, sent {r.Sent}, " +
        $"retrying {r.Retrying}, failed {r.Failed}, uncertain {r.Uncertain}, cancelled {r.Cancelled}, skipped {r.Skipped}; " +
        $"started {r.StartedAt:yyyy-MM-dd HH:mm:ss}Z{(r.FinishedAt is { } f ? $", finished {f:yyyy-MM-dd HH:mm:ss}Z" : "")}";
}
