namespace Newsletter.Configuration;

/// <summary>The <c>Newsletter:Import</c> section: subscriber CSV imports.</summary>
public sealed class ImportOptions
{
    public const string Section = "Newsletter:Import";

    /// <summary>Largest number of rows one import takes; a bigger file is refused whole.</summary>
    public int MaxRows { get; set; } = 2_000_000;
}
