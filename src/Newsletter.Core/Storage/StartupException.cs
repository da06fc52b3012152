namespace Newsletter.Storage;

/// <summary>The service cannot start; the message says why and how to fix it, in one line.</summary>
public sealed class StartupException(string message) : Exception(message);
