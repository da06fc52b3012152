using System.Text;
using Dapper;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Subscribers;
using Newsletter.Tests.Infrastructure;
using Newsletter.Validation;

namespace Newsletter.Tests.Subscribers;

/// <summary>Subscriber CSV import and export against a real PostgreSQL.</summary>
public sealed class ImportTests : IAsyncLifetime
{
    private TestDatabase _db = null!;

    public async Task InitializeAsync() => _db = await TestDatabase.CreateAsync();

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private SubscriberImport Import(int maxRows = 2_000_000) =>
        new(_db.DataSource, Options.Create(new DeliveryOptions()), Options.Create(new ImportOptions { MaxRows = maxRows }), TimeProvider.System);

    private Task<ImportReport> ImportAsync(string csv, SubscriberStatus status = SubscriberStatus.Active, int maxRows = 2_000_000, bool bom = false) =>
        ImportBytesAsync((bom ? "\uFEFF" : "") + csv, status, maxRows);

    private Task<ImportReport> ImportBytesAsync(string csv, SubscriberStatus status = SubscriberStatus.Active, int maxRows = 2_000_000) =>
        Import(maxRows).ImportAsync(new MemoryStream(Encoding.UTF8.GetBytes(csv)), status);

    private async Task<List<(string Email, string? Name, string Cadence, string Language, string Status)>> StoredAsync()
    {
        await using var connection = await _db.DataSource.OpenConnectionAsync();
        return (await connection.QueryAsync<(string, string?, string, string, string)>(
            "select email, name, cadence, language, status from subscribers order by email")).ToList();
    }

    [Fact]
    public async Task A_mix_of_valid_invalid_and_duplicate_rows_stores_exactly_the_valid_ones_and_reports_the_rest_by_line()
    {
        await _db.Subscribers().AddActiveAsync(new NewSubscriber("known@example.org", "Known", Cadence.Weekly, Language.Ko));
        await _db.Subscribers().AddActiveAsync(new NewSubscriber("left@example.org", null, Cadence.Weekly, Language.Ko));
        await _db.Subscribers().UpdateAsync("left@example.org", null, null, SubscriberStatus.Unsubscribed);

        var report = await ImportAsync(""""
            Email,Name,Cadence,Language
            minji@example.org,"김, 민지",daily,ko
            not-an-address,,,
            tom@example.org,"Tom ""the reader""",,en
            MINJI@example.org,again,,
            sam@example.org,,hourly,
            known@example.org,Known Again,daily,
            left@example.org,,daily,
            one,two
            ann@example.org,,,both

            """", bom: true);

        Assert.Equal((9L, 3L, 1L, 0L, 5L), (report.Rows, report.Inserted, report.Updated, report.Unchanged, report.Rejected));
        Assert.Equal(
            [
                new ImportProblem(3, "email", "'not-an-address' is not an email address (expected name@example.org)"),
                new ImportProblem(5, "email", "the same address as line 2"),
                new ImportProblem(6, "cadence", "must be one of weekly, daily (got 'hourly')"),
                new ImportProblem(8, "email", "the subscriber left (unsubscribed, bounced or complained) and is not re-added"),
                new ImportProblem(9, "csv", "expected 4 fields, found 2"),
            ], report.Problems);
        Assert.Equal(
            [
                ("ann@example.org", null, "weekly", "both", "active"),
                ("known@example.org", "Known Again", "daily", "ko", "active"),
                ("left@example.org", null, "weekly", "ko", "unsubscribed"), // left alone
                ("minji@example.org", "김, 민지", "daily", "ko", "active"),
                ("tom@example.org", "Tom \"the reader\"", "weekly", "en", "active"),
            ], await StoredAsync());
        Assert.Equal(3L, await _db.ScalarAsync<long>("select count(*) from subscription_events where detail = 'import'"));

        // The same file again changes nothing.
        var again = await ImportAsync("email,name\nminji@example.org,\"김, 민지\"\n");
        Assert.Equal((1L, 0L, 0L, 1L, 0L), (again.Rows, again.Inserted, again.Updated, again.Unchanged, again.Rejected));
    }

    [Fact]
    public async Task Pending_imports_wait_for_a_confirmation_mail()
    {
        await ImportAsync("email\nnew@example.org\n", SubscriberStatus.Pending);
        Assert.Equal("pending", await _db.ScalarAsync<string>("select status from subscribers"));
        Assert.True(await _db.ScalarAsync<bool>("select confirmation_requested_at is not null from subscribers"));
    }

    [Theory]
    [InlineData("", "the file is empty")]
    [InlineData("mail,name\nx@example.org,y\n", "unknown column 'mail'")]
    [InlineData("name,cadence\nx,weekly\n", "no 'email' column")]
    [InlineData("email,email\nx@example.org,y@example.org\n", "appears twice")]
    [InlineData("email,name\nfirst@example.org,ok\nx@example.org,\"broken\ny@example.org,z\n", "line 3: a quoted field is not closed")]
    [InlineData("email,name\nfirst@example.org,ok\nx@example.org,bro\"ken\n", "line 3: a quote inside an unquoted field")]
    [InlineData("email,name\nfirst@example.org,ok\nx@example.org,\"a\"b\n", "line 3: text after the closing quote")]
    public async Task A_broken_file_imports_nothing_and_says_why(string csv, string expected)
    {
        var e = await Assert.ThrowsAsync<InputException>(() => ImportAsync(csv));
        Assert.Equal("csv", e.Field);
        Assert.Contains(expected, e.Rule);
        Assert.Empty(await StoredAsync());
    }

    [Fact]
    public async Task A_file_that_is_not_utf8_or_has_too_many_rows_imports_nothing()
    {
        var latin1 = Encoding.Latin1.GetBytes("email,name\nfirst@example.org,ok\nsecond@example.org,Jos\u00e9\n");
        var e = await Assert.ThrowsAsync<InputException>(() => Import().ImportAsync(new MemoryStream(latin1), SubscriberStatus.Active));
        Assert.Contains("not UTF-8", e.Rule);

        var rows = string.Concat(Enumerable.Range(0, 11).Select(i => $"r{i}@example.org\n"));
        var tooMany = await Assert.ThrowsAsync<InputException>(() => ImportAsync("email\n" + rows, maxRows: 10));
        Assert.Contains("more than 10 rows", tooMany.Rule);
        Assert.Empty(await StoredAsync());
    }

    [Fact]
    public async Task Export_streams_every_subscriber_and_imports_back_unchanged()
    {
        await ImportAsync("email,name,cadence,language\na@example.org,\"Kim, \"\"Minji\"\"\",daily,ko\nb@example.org,,weekly,both\nc@example.org,\"이, 준\",weekly,en\n");
        var before = await StoredAsync();
        var csv = new StringWriter();
        await Import().ExportAsync(csv, null);
        var exported = csv.ToString();
        Assert.StartsWith("email,name,cadence,language,status,created_at,time_zone,hour,weekday\r\n", exported);
        Assert.Contains("a@example.org,\"Kim, \"\"Minji\"\"\",daily,ko,active,", exported);

        await using (var connection = await _db.DataSource.OpenConnectionAsync())
            await connection.ExecuteAsync("delete from subscribers");
        var report = await ImportAsync(exported);
        Assert.Equal((3L, 3L, 0L), (report.Rows, report.Inserted, report.Rejected));
        Assert.Equal(before, await StoredAsync());

        var onlyActive = new StringWriter();
        await _db.Subscribers().UpdateAsync("b@example.org", null, null, SubscriberStatus.Unsubscribed);
        await Import().ExportAsync(onlyActive, SubscriberStatus.Active);
        Assert.DoesNotContain("b@example.org", onlyActive.ToString());
    }

    [Fact]
    public async Task An_erased_address_is_suppressed_for_imports_and_admins_but_its_owner_can_sign_up_again()
    {
        await ImportAsync("email,name\ngone@example.org,Gone\nstays@example.org,Stays\n");
        await _db.Subscribers().EraseAsync("GONE@example.org");

        Assert.Equal(0L, await _db.ScalarAsync<long>("select count(*) from subscribers where email = 'gone@example.org'"));
        Assert.Equal(1L, await _db.ScalarAsync<long>("select count(*) from suppressions where email_hash = sha256(convert_to('gone@example.org', 'UTF8'))")); // only a hash is kept
        var report = await ImportAsync("email,name\ngone@example.org,Back\n");
        Assert.Equal([new ImportProblem(2, "email", "the address was erased and is suppressed")], report.Problems);
        await Assert.ThrowsAsync<ConflictException>(() => _db.Subscribers().AddActiveAsync(new NewSubscriber("gone@example.org", null, Cadence.Weekly, Language.Ko)));
        await Assert.ThrowsAsync<NotFoundException>(() => _db.Subscribers().EraseAsync("gone@example.org"));
        Assert.Equal(1L, await _db.ScalarAsync<long>("select count(*) from subscribers"));
    }

    [Fact]
    public async Task Keyset_paging_walks_ten_thousand_subscribers_once_each_with_filters()
    {
        var csv = new StringBuilder("email,cadence\n");
        for (var i = 0; i < 10_000; i++) csv.Append($"p{i:D5}@example.org,{(i % 5 == 0 ? "daily" : "weekly")}\n");
        Assert.Equal(10_000L, (await ImportAsync(csv.ToString())).Inserted);
        var store = _db.Subscribers();

        var seen = new List<string>();
        long after = 0;
        while (true)
        {
            var page = await store.PageAsync(null, null, null, after, 700);
            seen.AddRange(page.Select(s => s.Email));
            if (page.Count < 700) break;
            after = page[^1].Id;
        }
        Assert.Equal(10_000, seen.Count);
        Assert.Equal(10_000, seen.Distinct().Count());
        Assert.Equal(seen.Order(StringComparer.Ordinal), seen); // joined in file order

        var daily = await store.PageAsync(SubscriberStatus.Active, Cadence.Daily, null, 0, 1000);
        Assert.Equal(1000, daily.Count);
        Assert.All(daily, s => Assert.Equal(Cadence.Daily, s.Cadence));
        var search = await store.PageAsync(null, null, "p0012", 0, 100);
        Assert.Equal(Enumerable.Range(120, 10).Select(i => $"p{i:D5}@example.org"), search.Select(s => s.Email));
        Assert.Empty(await store.PageAsync(null, null, "%", 0, 100)); // wildcards are matched literally
    }
}
