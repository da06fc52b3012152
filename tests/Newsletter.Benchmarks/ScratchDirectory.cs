namespace Newsletter.Benchmarks;

/// <summary>A benchmark's own directory under the temp path (its PostgreSQL cluster, files), removed when the run ends.</summary>
internal sealed class ScratchDirectory(string name) : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"{name}-{Environment.ProcessId}");

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }
}
