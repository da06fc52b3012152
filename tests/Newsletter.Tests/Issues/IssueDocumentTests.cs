using System.Text.Json.Nodes;
using Newsletter.Issues;
using Newsletter.Validation;

namespace Newsletter.Tests.Issues;

public sealed class IssueDocumentTests
{
    private static JsonObject Sample() => JsonNode.Parse(SampleIssue.Json)!.AsObject();

    private static InputException Reject(JsonNode document) =>
        Assert.Throws<InputException>(() => IssueDocument.Parse(document.ToJsonString()));

    [Fact]
    public void The_sample_issue_parses_with_ten_bilingual_papers_and_their_links()
    {
        var issue = SampleIssue.Document;

        Assert.Equal("top-ml-papers-2024-04-22", issue.Slug);
        Assert.Equal(new DateOnly(2024, 4, 22), issue.PeriodFrom);
        Assert.Equal(new DateOnly(2024, 4, 28), issue.PeriodTo);
        Assert.Equal(10, issue.Items.Count);
        Assert.All(issue.Items, item =>
        {
            Assert.False(string.IsNullOrEmpty(item.Title.Ko));
            Assert.False(string.IsNullOrEmpty(item.Title.En));
            Assert.False(string.IsNullOrEmpty(item.Summary.Ko));
            Assert.False(string.IsNullOrEmpty(item.Summary.En));
            Assert.Contains(item.Links, l => l.Label == "paper" && l.Url.StartsWith("https://", StringComparison.Ordinal));
        });
        Assert.Equal("Phi-3 Technical Report: A Highly Capable Language Model Locally on Your Phone", issue.Items[0].Title.En);
        Assert.NotNull(issue.Items[0].Abstract);
        Assert.Null(issue.Items[1].Abstract);
    }

    [Fact]
    public void A_minimal_issue_needs_only_slug_title_and_items_with_one_language()
    {
        var issue = IssueDocument.Parse("""
            {"slug":"tiny","title":{"en":"Tiny"},"items":[{"title":{"en":"A"},"summary":{"en":"B"},"links":[{"label":"paper","url":"http://example.org/a"}]}]}
            """);
        Assert.Null(issue.Title.Ko);
        Assert.Null(issue.Intro);
        Assert.Null(issue.PeriodFrom);
        Assert.Single(issue.Items);
    }

    [Theory]
    [InlineData("{")]
    [InlineData("[1,2]")]
    [InlineData("{\"slug\": \"a\",}")]
    [InlineData("")]
    public void Broken_json_is_rejected(string json)
    {
        var error = Assert.Throws<InputException>(() => IssueDocument.Parse(json));
        Assert.Equal("$", error.Field);
    }

    [Fact]
    public void An_unknown_top_level_field_is_named()
    {
        var doc = Sample();
        doc["author"] = "someone";
        var error = Reject(doc);
        Assert.Equal("author", error.Field);
        Assert.Contains("not a known field", error.Rule);
    }

    [Fact]
    public void An_unknown_field_inside_an_item_is_named_with_its_path()
    {
        var doc = Sample();
        doc["items"]![3]!["score"] = 5;
        Assert.Equal("items[3].score", Reject(doc).Field);
    }

    [Fact]
    public void An_unknown_language_in_a_text_is_rejected()
    {
        var doc = Sample();
        doc["title"]!["ja"] = "週刊";
        Assert.Equal("title.ja", Reject(doc).Field);
    }

    [Theory]
    [InlineData("slug")]
    [InlineData("title")]
    [InlineData("items")]
    public void A_missing_required_field_is_named(string field)
    {
        var doc = Sample();
        doc.Remove(field);
        var error = Reject(doc);
        Assert.Equal(field, error.Field);
        Assert.Equal("is required", error.Rule);
    }

    [Fact]
    public void An_item_without_summary_is_rejected()
    {
        var doc = Sample();
        doc["items"]![0]!.AsObject().Remove("summary");
        Assert.Equal("items[0].summary", Reject(doc).Field);
    }

    [Fact]
    public void A_text_with_neither_language_is_rejected()
    {
        var doc = Sample();
        doc["items"]![2]!["title"] = new JsonObject();
        Assert.Equal("items[2].title", Reject(doc).Field);
    }

    [Theory]
    [InlineData("javascript:alert(1)")]
    [InlineData("ftp://example.org/paper.pdf")]
    [InlineData("/relative/path")]
    [InlineData("mailto:a@example.org")]
    [InlineData("https://exa mple.org/")]
    public void A_non_http_link_is_rejected(string url)
    {
        var doc = Sample();
        doc["items"]![1]!["links"]![0]!["url"] = url;
        var error = Reject(doc);
        Assert.Equal("items[1].links[0].url", error.Field);
    }

    [Fact]
    public void Text_over_the_size_limit_is_rejected()
    {
        var doc = Sample();
        doc["items"]![0]!["summary"]!["ko"] = new string('가', 4_001);
        var error = Reject(doc);
        Assert.Equal("items[0].summary.ko", error.Field);
        Assert.Contains("at most 4000", error.Rule);
    }

    [Theory]
    [InlineData("Title\nBcc: x@example.org")]
    [InlineData("Title\u0007")]
    [InlineData("Title\u2029")]
    public void Control_characters_in_a_title_are_rejected(string title)
    {
        var doc = Sample();
        doc["title"]!["en"] = title;
        var error = Reject(doc);
        Assert.Equal("title.en", error.Field);
        Assert.Contains("control characters", error.Rule);
    }

    [Fact]
    public void Line_breaks_are_allowed_in_an_intro_but_other_control_characters_are_not()
    {
        var doc = Sample();
        doc["intro"]!["en"] = "First paragraph.\nSecond paragraph.";
        Assert.Equal("First paragraph.\nSecond paragraph.", IssueDocument.Parse(doc.ToJsonString()).Intro!.En);

        doc["intro"]!["en"] = "Bell\u0007";
        Assert.Equal("intro.en", Reject(doc).Field);
    }

    [Theory]
    [InlineData("Has Capitals")]
    [InlineData("-leading-dash")]
    [InlineData("slash/in/slug")]
    [InlineData("")]
    public void A_slug_that_is_not_lower_case_words_and_dashes_is_rejected(string slug)
    {
        var doc = Sample();
        doc["slug"] = slug;
        Assert.Equal("slug", Reject(doc).Field);
    }

    [Fact]
    public void A_period_that_ends_before_it_starts_is_rejected()
    {
        var doc = Sample();
        doc["period"] = new JsonObject { ["from"] = "2024-04-28", ["to"] = "2024-04-22" };
        Assert.Equal("period.to", Reject(doc).Field);
    }

    [Fact]
    public void A_date_in_another_format_is_rejected()
    {
        var doc = Sample();
        doc["period"]!["from"] = "22/04/2024";
        Assert.Equal("period.from", Reject(doc).Field);
    }

    [Fact]
    public void A_wrong_type_is_rejected()
    {
        var doc = Sample();
        doc["items"] = "ten papers";
        Assert.Equal("items", Reject(doc).Field);
    }

    [Fact]
    public void An_issue_without_items_is_rejected()
    {
        var doc = Sample();
        doc["items"] = new JsonArray();
        Assert.Equal("items", Reject(doc).Field);
    }
}
