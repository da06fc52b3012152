using Newsletter.Subscribers;

namespace Newsletter.Tests.Subscribers;

public sealed class LinkSignerTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 9, 0, 0, TimeSpan.Zero);
    private readonly LinkSigner _signer = new("a-secret-that-is-long-enough-for-tests-0123");
    private readonly Guid _subscriber = Guid.NewGuid();

    [Fact]
    public void A_token_verifies_for_its_purpose_and_names_its_subscriber()
    {
        var token = _signer.Create(LinkPurpose.Unsubscribe, _subscriber, Now);

        Assert.True(_signer.TryVerify(token, LinkPurpose.Unsubscribe, Now.AddYears(1), maxAge: null, out var who));
        Assert.Equal(_subscriber, who);
        Assert.Matches("^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$", token);
        Assert.DoesNotContain(_subscriber.ToString("n"), token, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData(LinkPurpose.Unsubscribe, LinkPurpose.Confirm)]
    [InlineData(LinkPurpose.Unsubscribe, LinkPurpose.Preferences)]
    [InlineData(LinkPurpose.Preferences, LinkPurpose.Unsubscribe)]
    [InlineData(LinkPurpose.Confirm, LinkPurpose.Preferences)]
    public void A_token_is_refused_for_any_other_purpose(LinkPurpose issuedFor, LinkPurpose usedFor)
    {
        var token = _signer.Create(issuedFor, _subscriber, Now);
        Assert.False(_signer.TryVerify(token, usedFor, Now, null, out _));
    }

    [Fact]
    public void Changing_any_character_breaks_the_token()
    {
        var token = _signer.Create(LinkPurpose.Preferences, _subscriber, Now);
        for (var i = 0; i < token.Length; i++)
        {
            if (token[i] == '.') continue;
            var tampered = token[..i] + (token[i] == 'A' ? 'B' : 'A') + token[(i + 1)..];
            Assert.False(_signer.TryVerify(tampered, LinkPurpose.Preferences, Now, null, out _), $"tampered at {i}");
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("not-a-token")]
    [InlineData("....")]
    [InlineData("AQ.AQ")]
    [InlineData("%%%.%%%")]
    public void Garbage_is_refused(string token)
    {
        Assert.False(_signer.TryVerify(token, LinkPurpose.Unsubscribe, Now, null, out _));
    }

    [Fact]
    public void A_truncated_token_is_refused()
    {
        var token = _signer.Create(LinkPurpose.Unsubscribe, _subscriber, Now);
        Assert.False(_signer.TryVerify(token[..^3], LinkPurpose.Unsubscribe, Now, null, out _));
    }

    [Fact]
    public void A_token_signed_under_another_secret_is_refused()
    {
        var forged = new LinkSigner("another-secret-that-is-long-enough-0123456").Create(LinkPurpose.Unsubscribe, _subscriber, Now);
        Assert.False(_signer.TryVerify(forged, LinkPurpose.Unsubscribe, Now, null, out _));
    }

    [Fact]
    public void A_token_older_than_its_allowed_age_is_refused()
    {
        var token = _signer.Create(LinkPurpose.Confirm, _subscriber, Now);
        Assert.True(_signer.TryVerify(token, LinkPurpose.Confirm, Now.AddDays(6), TimeSpan.FromDays(7), out _));
        Assert.False(_signer.TryVerify(token, LinkPurpose.Confirm, Now.AddDays(8), TimeSpan.FromDays(7), out _));
    }
}
