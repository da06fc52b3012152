using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Newsletter.Benchmarks;

// dotnet run -c Release --project tests/Newsletter.Benchmarks -- message   (personalised message build, BenchmarkDotNet)
// dotnet run -c Release --project tests/Newsletter.Benchmarks -- delivery --subscribers N [--lanes L] [--window W] [--language ko|en|both|mixed] [--dkim] [--sink smtp-sink|postfix]   (end to end into an SMTP sink)
// dotnet run -c Release --project tests/Newsletter.Benchmarks -- import --rows N   (subscriber CSV import against a bare COPY)
// dotnet run -c Release --project tests/Newsletter.Benchmarks -- schedule --subscribers N [--history H]   (the local-time schedule's hourly slices over 24 zones)
// dotnet run -c Release --project tests/Newsletter.Benchmarks -- clicks [--seconds S] [--connections C] [--deliveries D]   (the tracked-link redirect under load)
// In process: RazorLight compiles the templates against this executable's compilation context,
// which a separately generated benchmark project would not have.
var config = DefaultConfig.Instance
    .AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance))
    .AddDiagnoser(MemoryDiagnoser.Default);
return args.FirstOrDefault() switch
{
    "message" => Run(() => BenchmarkRunner.Run<MessageBenchmarks>(config, args[1..])),
    "delivery" => await DeliveryBenchmark.RunAsync(args[1..]),
    "import" => await ImportBenchmark.RunAsync(args[1..]),
    "schedule" => await ScheduleBenchmark.RunAsync(args[1..]),
    "clicks" => await ClickBenchmark.RunAsync(args[1..]),
    _ => Usage(),
};

static int Run(Func<object> benchmark)
{
    benchmark();
    return 0;
}

static int Usage()
{
    Console.Error.WriteLine("usage: Newsletter.Benchmarks message [BenchmarkDotNet options] | delivery --subscribers N [--lanes L] [--window W] [--language ko|en|both|mixed] [--dkim] [--sink smtp-sink|postfix] | import --rows N | schedule --subscribers N [--history H] | clicks [--seconds S] [--connections C] [--deliveries D]");
    return 2;
}
