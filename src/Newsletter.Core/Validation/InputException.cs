namespace Newsletter.Validation;

/// <summary>Which rule a value broke, so a page can say it in the reader's language.</summary>
public enum InputRule
{
    /// <summary>Any other rule: <see cref="InputException.Rule"/> says it in English.</summary>
    Other,
    Required,
    TooLong,
    ControlCharacter,
    InvisibleCharacter,
    NotUnicode,
    NotEmail,
    NotOneOf,
    /// <summary>A field the form or document does not have.</summary>
    UnknownField,
}

/// <summary>
/// Bad input from an operator, an import file or a web form. <see cref="Field"/> names the offending
/// field (a JSON path such as <c>items[2].links[0].url</c>, or a form or CLI field) and
/// <see cref="Rule"/> says what the value must be; the message is meant for a person.
/// <see cref="Kind"/> and <see cref="Limit"/> let a page say the same in another language.
/// </summary>
public sealed class InputException(string field, string rule, InputRule kind = InputRule.Other, int limit = 0) : Exception($"{field}: {rule}")
{
    public string Field { get; } = field;

    public string Rule { get; } = rule;

    public InputRule Kind { get; } = kind;

    /// <summary>The number in the rule (the maximum length of <see cref="InputRule.TooLong"/>).</summary>
    public int Limit { get; } = limit;
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
