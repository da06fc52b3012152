using System.Text;
using Newsletter.Issues;
using Newsletter.Subscribers;
using Newsletter.Validation;

namespace Newsletter.Tests.Validation;

/// <summary>The one set of text and address rules every entry point shares.</summary>
public sealed class TextRulesTests
{
    [Theory]
    [InlineData("left\n@example.com")]
    [InlineData("left\r\n@example.com")]
    [InlineData("left\r@example.com")]
    [InlineData("le\nft@example.com")]
    [InlineData("left@example.com\n.evil.org")]
    [InlineData("left@exam\nple.com")]
    [InlineData("left\u0085@example.com")]
    [InlineData("left\u2028@example.com")]
    [InlineData("left\0@example.com")]
    [InlineData("left\u200B@example.com")]
    public void An_address_with_a_line_break_or_control_character_anywhere_is_refused(string input)
    {
        var error = Assert.Throws<InputException>(() => EmailAddress.Parse("email", input));
        Assert.Equal("email", error.Field);
        Assert.Equal(InputRule.NotEmail, error.Kind);
    }

    [Theory]
    [InlineData("left@example.com\n", "left@example.com")]
    [InlineData("\r\n left@Example.COM \t", "left@example.com")]
    [InlineData("a/b@example.com", "a/b@example.com")]
    public void Spaces_and_line_breaks_around_an_address_are_dropped(string input, string stored)
    {
        Assert.Equal(stored, EmailAddress.Parse("email", input));
    }

    [Theory]
    [InlineData("abc\n")]
    [InlineData("abc\r\n")]
    [InlineData("\nabc")]
    [InlineData("abc\0")]
    public void A_slug_with_a_line_break_is_not_a_slug(string slug)
    {
        Assert.False(IssueDocument.IsSlug(slug));
        var json = $$"""{"slug":{{System.Text.Json.JsonSerializer.Serialize(slug)}},"title":{"en":"T"},"items":[{"title":{"en":"P"},"summary":{"en":"S"},"links":[{"label":"paper","url":"https://example.org/p"}]}]}""";
        Assert.Equal("slug", Assert.Throws<InputException>(() => IssueDocument.Parse(json)).Field);
    }

    public static TheoryData<string, InputRule> RefusedTexts => new()
    {
        { "Bad\uFFFF", InputRule.NotUnicode },
        { "Bad\uFFFE", InputRule.NotUnicode },
        { "Bad\uFDD0", InputRule.NotUnicode },
        { "Bad\U0001FFFF", InputRule.NotUnicode },
        { "Bad\U0010FFFE", InputRule.NotUnicode },
        { "Bad\u202Egnp.exe", InputRule.InvisibleCharacter },
        { "Bad\u202A", InputRule.InvisibleCharacter },
        { "Bad\u2066x\u2069", InputRule.InvisibleCharacter },
        { "Bad\u200B", InputRule.InvisibleCharacter },
        { "Bad\u2060", InputRule.InvisibleCharacter },
        { "Bad\uFEFF", InputRule.InvisibleCharacter },
        { "Bad\0", InputRule.ControlCharacter },
        { "Bad\u0085", InputRule.ControlCharacter },
        { "Bad\v", InputRule.ControlCharacter },
        { "Bad\f", InputRule.ControlCharacter },
        { "Bad\u2028", InputRule.ControlCharacter },
        { "Bad\u2029", InputRule.ControlCharacter },
        { "Bad\u001B[31m", InputRule.ControlCharacter },
        { "\u200D\u200C", InputRule.Required },
        { " \u200E ", InputRule.Required },
        { "\u0301", InputRule.Required },
    };

    [Theory]
    [MemberData(nameof(RefusedTexts))]
    public void A_title_with_a_forbidden_or_only_invisible_character_is_refused_naming_the_rule(string text, InputRule rule)
    {
        var error = Assert.Throws<InputException>(() => TextRules.SingleLine("title.en", text, TextRules.MaxTitleLength));
        Assert.Equal(("title.en", rule), (error.Field, error.Kind));
        if (rule != InputRule.Required)
            Assert.Equal(rule, Assert.Throws<InputException>(() => TextRules.MultiLine("summary.en", text + "\nmore", 100)).Kind);
    }

    [Fact]
    public void Unpaired_surrogates_are_refused_wherever_they_stand()
    {
        // Built here: test-case data would not carry an unpaired surrogate through intact.
        foreach (var text in new[] { "Bad" + (char)0xD800, (char)0xDC00 + "Bad", "a" + (char)0xDBFF + "b", "😀"[..1] })
        {
            Assert.Equal(InputRule.NotUnicode, Assert.Throws<InputException>(() => TextRules.SingleLine("title.en", text, 300)).Kind);
            Assert.Equal(InputRule.NotUnicode, Assert.Throws<InputException>(() => TextRules.MultiLine("summary.en", text, 300)).Kind);
            Assert.Equal("email", Assert.Throws<InputException>(() => EmailAddress.Parse("email", text + "@example.org")).Field);
        }
    }

    [Theory]
    [InlineData("한국어 제목", "한국어 제목")]
    [InlineData("  Emoji 👩‍💻 with a joiner ", "Emoji 👩‍💻 with a joiner")]
    [InlineData("עברית\u200F (2024)", "עברית\u200F (2024)")]
    [InlineData("می\u200Cخواهم", "می\u200Cخواهم")]
    [InlineData("Soft\u00ADhyphen", "Soft\u00ADhyphen")]
    [InlineData("Discount 100%%NL: today", "Discount 100%%NL: today")]
    [InlineData("𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0001F600", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0001F600")]
    public void Real_text_in_any_script_is_stored_as_given_trimmed(string text, string stored)
    {
        Assert.Equal(stored, TextRules.SingleLine("title.en", text, TextRules.MaxTitleLength));
    }

    [Fact]
    public void Multi_line_text_keeps_line_breaks_of_every_kind_as_line_feeds_and_tabs()
    {
        Assert.Equal("a\nb\nc\n\td", TextRules.MultiLine("summary.en", "a\r\nb\rc\n\td", 100));
    }

    [Fact]
    public void Every_stored_text_is_xml_text_and_xml_safe_drops_what_is_not()
    {
        foreach (var ok in new[] { "한국어", "👩‍💻", "a\tb\nc" })
            Assert.Equal(ok, TextRules.XmlSafe(ok));
        Assert.Equal("ab", TextRules.XmlSafe("a\uFFFFb"));
        Assert.Equal("ab", TextRules.XmlSafe("a\uD800b"));
        Assert.Equal("ab", TextRules.XmlSafe("a\0b"));
        Assert.Equal("a😀b", TextRules.XmlSafe("a😀\uFFFEb"));
    }

    [Fact]
    public void Names_follow_the_same_rules_and_an_invisible_only_name_is_not_a_name()
    {
        Assert.Equal(InputRule.InvisibleCharacter, Assert.Throws<InputException>(() => NewSubscriber.Create("a@example.org", "\u200B", null, null)).Kind);
        Assert.Equal(InputRule.InvisibleCharacter, Assert.Throws<InputException>(() => NewSubscriber.Create("a@example.org", "Kim\u202E", null, null)).Kind);
        Assert.Null(NewSubscriber.Create("a@example.org", "  ", null, null).Name);
    }

    [Theory]
    [InlineData("=HYPERLINK(\"http://evil.example\",\"x\")")]
    [InlineData("+cmd|' /C calc'!A0")]
    [InlineData("-2+3")]
    [InlineData("@SUM(1,2)")]
    [InlineData("=1+1@example.com")]
    [InlineData("\t=1")]
    [InlineData("'=already quoted")]
    [InlineData("''@twice")]
    public void Export_neutralises_formulas_and_import_takes_exactly_that_quote_off(string value)
    {
        var exported = Newsletter.Subscribers.CsvReader.ForSpreadsheet(value);
        Assert.StartsWith("'", exported);
        Assert.Equal(value, Newsletter.Subscribers.CsvReader.FromSpreadsheet(exported));
        using var writer = new StringWriter();
        Newsletter.Subscribers.CsvReader.WriteField(writer, value);
        Assert.StartsWith("\"'", writer.ToString());
    }

    [Theory]
    [InlineData("Kim")]
    [InlineData("'quoted name'")]
    [InlineData("O'Brien")]
    [InlineData("a-b")]
    public void Text_that_is_no_formula_is_exported_as_it_is(string value)
    {
        Assert.Equal(value, Newsletter.Subscribers.CsvReader.ForSpreadsheet(value));
        Assert.Equal(value, Newsletter.Subscribers.CsvReader.FromSpreadsheet(value));
    }

    [Fact]
    public void A_record_of_a_hundred_million_commas_is_refused_after_the_field_limit_having_read_little()
    {
        using var input = new EndlessCommas("email\r\nx@example.org"u8.ToArray(), 100_000_000);
        using var reader = new Newsletter.Subscribers.CsvReader(input);
        Assert.NotNull(reader.Read());
        var error = Assert.Throws<InputException>(() => reader.Read());
        Assert.Equal("csv", error.Field);
        Assert.Contains($"more than {Newsletter.Subscribers.CsvReader.MaxFields} fields", error.Message);
        Assert.True(input.Position < 1_000_000, $"read {input.Position} bytes");
    }

    [Fact]
    public void A_record_longer_than_the_record_limit_is_refused()
    {
        var line = string.Join(",", Enumerable.Repeat(new string('a', 4000), 5));
        using var reader = new Newsletter.Subscribers.CsvReader(new MemoryStream(Encoding.UTF8.GetBytes("email\n" + line + "\n")));
        reader.Read();
        Assert.Contains("longer than", Assert.Throws<InputException>(() => reader.Read()).Message);
    }

    /// <summary>A prefix, then as many commas as asked, produced as they are read.</summary>
    private sealed class EndlessCommas(byte[] prefix, long commas) : Stream
    {
        private long _position;

        public override int Read(byte[] buffer, int offset, int count)
        {
            var total = prefix.Length + commas;
            var n = 0;
            while (n < count && _position < total)
            {
                buffer[offset + n++] = _position < prefix.Length ? prefix[_position] : (byte)',';
                _position++;
            }
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
