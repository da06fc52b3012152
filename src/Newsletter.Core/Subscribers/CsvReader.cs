using System.Text;
using Newsletter.Validation;

namespace Newsletter.Subscribers;

/// <summary>
/// A streaming RFC 4180 reader: comma-separated fields, optionally in double quotes (a quote
/// inside is doubled; a quoted field may span lines), records ended by CRLF or LF. Reads strict
/// UTF-8 (a leading byte order mark is skipped); a byte sequence that is not UTF-8 or a broken
/// quote stops the read with the line it is on. Never holds more than one record, and a record is
/// bounded: at most <see cref="MaxFields"/> fields of at most 4,096 characters, and at most
/// <see cref="MaxRecordLength"/> characters in all.
/// </summary>
public sealed class CsvReader : IDisposable
{
    private const int MaxFieldLength = 4096;
    public const int MaxFields = 64;
    public const int MaxRecordLength = 16 * 1024;
    private int _recordLength;
    private readonly TextReader _reader;
    private readonly List<string> _fields = [];
    private readonly StringBuilder _field = new();

    public CsvReader(Stream stream)
    {
        _reader = new StreamReader(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true),
            detectEncodingFromByteOrderMarks: false, bufferSize: 64 * 1024);
    }

    private bool _started;

    /// <summary>The line the last record returned started on (1 for the first line).</summary>
    public long RecordLine { get; private set; }

    private long _line = 1;

    /// <summary>The next record's fields, or null at the end of the input.</summary>
    /// <exception cref="InputException">The input is not UTF-8, a quote is broken, or a field is longer than 4,096 characters.</exception>
    public IReadOnlyList<string>? Read()
    {
        _fields.Clear();
        _field.Clear();
        _recordLength = 0;
        RecordLine = _line;
        try
        {
            if (!_started)
            {
                _started = true;
                if (_reader.Peek() == '\uFEFF') _reader.Read();
            }
            var c = _reader.Read();
            if (c == -1) return null;
            while (true)
            {
                if (c == '"' && _field.Length == 0)
                {
                    // A quoted field: up to the closing quote, doubled quotes standing for one.
                    while (true)
                    {
                        c = _reader.Read();
                        if (c == -1) throw new InputException("csv", $"line {RecordLine}: a quoted field is not closed");
                        if (c == '"')
                        {
                            if (_reader.Peek() == '"') { _reader.Read(); Append('"'); continue; }
                            break;
                        }
                        if (c == '\n') _line++;
                        Append((char)c);
                    }
                    c = _reader.Read();
                    if (c is not (',' or '\r' or '\n' or -1))
                        throw new InputException("csv", $"line {_line}: text after the closing quote of a field (a quote inside a field must be doubled)");
                }
                else
                {
                    while (c is not (',' or '\r' or '\n' or -1))
                    {
                        if (c == '"') throw new InputException("csv", $"line {_line}: a quote inside an unquoted field (quote the field and double the quote)");
                        Append((char)c);
                        c = _reader.Read();
                    }
                }
                if (_fields.Count == MaxFields)
                    throw new InputException("csv", $"line {RecordLine}: more than {MaxFields} fields in one record");
                _fields.Add(_field.ToString());
                _field.Clear();
                if (c == ',') { c = _reader.Read(); continue; }
                if (c == '\r' && _reader.Peek() == '\n') _reader.Read();
                if (c is '\r' or '\n') _line++;
                return _fields.ToArray();
            }
        }
        catch (DecoderFallbackException)
        {
            throw new InputException("csv", $"the file is not UTF-8 (found reading on from line {_line}); save it as UTF-8, with or without BOM");
        }
    }

    private void Append(char c)
    {
        if (_field.Length >= MaxFieldLength) throw new InputException("csv", $"line {_line}: a field is longer than {MaxFieldLength} characters");
        if (++_recordLength > MaxRecordLength) throw new InputException("csv", $"line {RecordLine}: a record is longer than {MaxRecordLength} characters");
        _field.Append(c);
    }

    private static readonly System.Buffers.SearchValues<char> FormulaStarts = System.Buffers.SearchValues.Create("=+-@\t\r");

    /// <summary>
    /// Whether a spreadsheet would read the text as a formula once its neutralising quotes are
    /// taken off: it starts with = + - @ TAB or CR after any number of single quotes.
    /// </summary>
    private static bool LooksLikeFormula(string value)
    {
        var i = 0;
        while (i < value.Length && value[i] == '\'') i++;
        return i < value.Length && FormulaStarts.Contains(value[i]);
    }

    /// <summary>
    /// A person's text as an export writes it (OWASP's CSV injection advice): a value a
    /// spreadsheet would run as a formula gets a leading single quote. <see cref="FromSpreadsheet"/>
    /// takes exactly that quote off again, so an export imports back unchanged.
    /// </summary>
    public static string ForSpreadsheet(string value) => LooksLikeFormula(value) ? "'" + value : value;

    /// <summary>The inverse of <see cref="ForSpreadsheet"/>.</summary>
    public static string FromSpreadsheet(string value) => value.Length > 1 && value[0] == '\'' && LooksLikeFormula(value) ? value[1..] : value;

    /// <summary>Writes one field of a person's text: neutralised for spreadsheets, and quoted when it needs to be or was neutralised.</summary>
    public static void WriteField(TextWriter writer, string? value)
    {
        if (string.IsNullOrEmpty(value)) return;
        var safe = ForSpreadsheet(value);
        if (!ReferenceEquals(safe, value) || value.AsSpan().IndexOfAny(",\"\r\n") >= 0)
        {
            value = safe;
            writer.Write('"');
            writer.Write(value.Replace("\"", "\"\""));
            writer.Write('"');
        }
        else
        {
            writer.Write(value);
        }
    }

    public void Dispose() => _reader.Dispose();
}
