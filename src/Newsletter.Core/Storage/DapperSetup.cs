using System.Runtime.CompilerServices;
using Dapper;

namespace Newsletter.Storage;

internal static class DapperSetup
{
    // Columns are snake_case, properties PascalCase. A module initializer sets this before any
    // store runs, whoever composes the stores (the service, a CLI verb, a test).
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void MatchSnakeCaseColumns() => DefaultTypeMap.MatchNamesWithUnderscores = true;
}
