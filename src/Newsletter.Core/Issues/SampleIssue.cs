namespace Newsletter.Issues;

/// <summary>The sample issue shipped with the service (db/samples), modelled on a real weekly digest.</summary>
public static class SampleIssue
{
    public const string ResourceName = "samples/top-ml-papers-2024-04-22.json";

    public static string Json
    {
        get
        {
            using var stream = typeof(SampleIssue).Assembly.GetManifestResourceStream(ResourceName)
                ?? throw new InvalidOperationException($"{ResourceName} is not embedded");
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
    }

    public static IssueDocument Document => IssueDocument.Parse(Json);
}
