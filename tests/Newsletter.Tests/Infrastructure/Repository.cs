namespace Newsletter.Tests.Infrastructure;

/// <summary>Files of the repository the tests were built from.</summary>
public static class Repository
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(string relative) => System.IO.Path.Combine(Root, relative);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Newsletter.sln")))
                return dir.FullName;
        throw new InvalidOperationException("Newsletter.sln not found above " + AppContext.BaseDirectory);
    }
}
