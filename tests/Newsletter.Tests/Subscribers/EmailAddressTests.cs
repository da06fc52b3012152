using Newsletter.Validation;

namespace Newsletter.Tests.Subscribers;

public sealed class EmailAddressTests
{
    [Theory]
    [InlineData("reader@example.org", "reader@example.org")]
    [InlineData("  Reader.Name+tag@Example.ORG ", "Reader.Name+tag@example.org")]
    [InlineData("user@sub.domain.co.kr", "user@sub.domain.co.kr")]
    [InlineData("kim@한국.kr", "kim@xn--3e0b707e.kr")]
    public void Valid_addresses_are_accepted_with_the_domain_lower_cased(string input, string expected)
    {
        Assert.Equal(expected, EmailAddress.Parse("email", input));
    }

    [Theory]
    [InlineData("")]
    [InlineData("plainaddress")]
    [InlineData("@example.org")]
    [InlineData("user@")]
    [InlineData("a@b@example.org")]
    [InlineData("user@localhost")]
    [InlineData("user@exa mple.org")]
    [InlineData("us er@example.org")]
    [InlineData(".user@example.org")]
    [InlineData("user..name@example.org")]
    [InlineData("user@example.org\r\nBcc: victim@example.org")]
    [InlineData("\"quoted\"@example.org")]
    public void Malformed_addresses_are_rejected_naming_the_field(string input)
    {
        var error = Assert.Throws<InputException>(() => EmailAddress.Parse("email", input));
        Assert.Equal("email", error.Field);
    }

    [Fact]
    public void An_address_over_254_characters_is_rejected()
    {
        var error = Assert.Throws<InputException>(() => EmailAddress.Parse("email", new string('a', 64) + "@" + new string('b', 190) + ".org"));
        Assert.Contains("254", error.Message);
    }
}
