using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;
using Newsletter.Validation;

namespace Newsletter.Tests.Subscribers;

public sealed class SubscriberStoreTests
{
    [Fact]
    public async Task An_added_subscriber_is_active_with_its_choices_and_a_random_public_id()
    {
        await using var db = await TestDatabase.CreateAsync();
        var store = db.Subscribers();

        var added = await store.AddActiveAsync(NewSubscriber.Create("Jisoo@Example.org", "박지수", "daily", "both"));
        var found = await store.FindByEmailAsync("jisoo@example.org");

        Assert.NotNull(found);
        Assert.Equal(added.Id, found.Id);
        Assert.Equal("Jisoo@example.org", found.Email);
        Assert.Equal("박지수", found.Name);
        Assert.Equal(Cadence.Daily, found.Cadence);
        Assert.Equal(Language.Both, found.Language);
        Assert.Equal(SubscriberStatus.Active, found.Status);
        Assert.NotNull(found.ConfirmedAt);
        Assert.NotEqual(Guid.Empty, found.PublicId);
    }

    [Fact]
    public async Task Defaults_are_weekly_and_korean()
    {
        await using var db = await TestDatabase.CreateAsync();
        var added = await db.Subscribers().AddActiveAsync(NewSubscriber.Create("reader@example.org", null, null, null));
        Assert.Equal(Cadence.Weekly, added.Cadence);
        Assert.Equal(Language.Ko, added.Language);
        Assert.Null(added.Name);
    }

    [Fact]
    public async Task The_same_address_in_another_letter_case_is_a_duplicate_and_nothing_is_written()
    {
        await using var db = await TestDatabase.CreateAsync();
        var store = db.Subscribers();
        await store.AddActiveAsync(NewSubscriber.Create("reader@example.org", null, null, null));

        var error = await Assert.ThrowsAsync<ConflictException>(() => store.AddActiveAsync(NewSubscriber.Create("READER@example.org", "Other", "daily", "en")));

        Assert.Equal("email", error.Field);
        Assert.Equal(1L, await db.ScalarAsync<long>("select count(*) from subscribers"));
    }

    [Theory]
    [InlineData("monthly", null, "cadence")]
    [InlineData(null, "fr", "language")]
    [InlineData("Weekly", null, "cadence")]
    public void Unknown_cadence_or_language_is_rejected_naming_the_field(string? cadence, string? language, string field)
    {
        var error = Assert.Throws<InputException>(() => NewSubscriber.Create("reader@example.org", null, cadence, language));
        Assert.Equal(field, error.Field);
        Assert.Contains("must be one of", error.Message);
    }

    [Theory]
    [InlineData("Jane\nBcc: x@example.org")]
    [InlineData("Jane\u2028Doe")]
    [InlineData("Jane\u0000")]
    public void Control_characters_in_a_name_are_rejected(string name)
    {
        var error = Assert.Throws<InputException>(() => NewSubscriber.Create("reader@example.org", name, null, null));
        Assert.Equal("name", error.Field);
    }

    [Fact]
    public void A_name_over_the_limit_is_rejected()
    {
        var error = Assert.Throws<InputException>(() => NewSubscriber.Create("reader@example.org", new string('가', 101), null, null));
        Assert.Contains("at most 100", error.Message);
    }

    [Fact]
    public async Task The_list_streams_subscribers_in_the_order_they_joined()
    {
        await using var db = await TestDatabase.CreateAsync();
        var store = db.Subscribers();
        foreach (var email in new[] { "c@example.org", "a@example.org", "b@example.org" })
            await store.AddActiveAsync(NewSubscriber.Create(email, null, null, null));

        var listed = new List<string>();
        await foreach (var s in store.ListAsync()) listed.Add(s.Email);

        Assert.Equal(["c@example.org", "a@example.org", "b@example.org"], listed);
    }
}
