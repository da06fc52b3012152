namespace Newsletter.Tests.Infrastructure;

/// <summary>A test class whose every test gets its own database and its own SMTP server on loopback.</summary>
public abstract class DatabaseAndSmtpTest : IAsyncLifetime
{
    protected TestDatabase _db = null!;
    protected TestSmtpServer _smtp = null!;

    public async Task InitializeAsync()
    {
        _db = await TestDatabase.CreateAsync();
        _smtp = new TestSmtpServer();
    }

    public async Task DisposeAsync()
    {
        await _smtp.DisposeAsync();
        await _db.DisposeAsync();
    }
}
