namespace Newsletter.Validation;

/// <summary>
/// Bad input from an operator, an import file or a web form. <see cref="Field"/> names the offending
/// field (a JSON path such as <c>items[2].links[0].url</c>, or a form or CLI field) and
/// <see cref="Rule"/> says what the value must be; the message is meant for a person.
/// </summary>
public sealed class InputException(string field, string rule) : Exception($"{field}: {rule}")
{
    public string Field { get; } = field;

    public string Rule { get; } = rule;
}

/// <summary>A lookup by key that found nothing (unknown issue slug, unknown subscriber).</summary>
public sealed class NotFoundException(string field, string message) : Exception($"{field}: {message}")
{
    public string Field { get; } = field;
}

/// <summary>A request that is well-formed but conflicts with stored state (duplicate address, published issue).</summary>
public sealed class ConflictException(string field, string message) : Exception($"{field}: {message}")
{
    public string Field { get; } = field;
}
