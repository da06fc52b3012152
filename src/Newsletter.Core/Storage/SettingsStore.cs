using System.Buffers.Text;
using System.Security.Cryptography;
using Dapper;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Npgsql;

namespace Newsletter.Storage;

/// <summary>
/// The key for signed links: <c>Newsletter__Secret</c> when set; otherwise one generated on first
/// start and kept in the <c>settings</c> table, so links in mail already sent stay valid across restarts.
/// </summary>
public sealed class SigningSecret(NpgsqlDataSource db, IOptions<NewsletterOptions> options)
{
    private string? _value;

    public string Value => _value ?? throw new InvalidOperationException("The signing secret is read at start-up, after migrations.");

    /// <summary>Loads (or generates and stores) the secret. Concurrent first starts agree on one value.</summary>
    public async Task InitializeAsync(CancellationToken ct = default)
    {
        if (!string.IsNullOrEmpty(options.Value.Secret))
        {
            _value = options.Value.Secret;
            return;
        }
        var candidate = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        await using var connection = await db.OpenConnectionAsync(ct);
        _value = await connection.ExecuteScalarAsync<string>(new CommandDefinition("""
            with inserted as (
                insert into settings (key, value) values ('link-secret', @candidate)
                on conflict (key) do nothing
                returning value
            )
            select value from inserted
            union all
            select value from settings where key = 'link-secret'
            limit 1
            """, new { candidate }, cancellationToken: ct));
    }
}
