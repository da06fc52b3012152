using System.Security.Cryptography;
using System.Text;
using Dapper;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Npgsql;

namespace Newsletter.Web;

/// <summary>One dashboard session as an admin sees it.</summary>
public sealed record AdminSession(long Id, DateTime CreatedAt, DateTime LastSeenAt, DateTime ExpiresAt, string? ClientAddress, string? UserAgent);

/// <summary>
/// The dashboard's sessions, kept in PostgreSQL (the cookie authentication's session store): the
/// cookie carries only a random session key, so a session can end on the server. It ends on
/// sign-out, when an admin revokes it, when it expires, and when <c>Newsletter__AdminApiKey</c>
/// changes: each session remembers a hash of the key it was opened with, and a session opened
/// with another key than the configured one is refused (and marked revoked).
/// </summary>
public sealed class AdminSessions(NpgsqlDataSource db, IOptions<NewsletterOptions> options, TimeProvider clock) : ITicketStore
{
    internal const string ClientAddressItem = ".client-address";
    internal const string UserAgentItem = ".user-agent";
    private static readonly TimeSpan DefaultLifetime = TimeSpan.FromHours(8);

    public async Task<string> StoreAsync(AuthenticationTicket ticket)
    {
        var adminKey = AdminKeyHash() ?? throw new InvalidOperationException("No admin key is configured");
        var key = WebEncoders.Base64UrlEncode(RandomNumberGenerator.GetBytes(32));
        var now = Now();
        await using var connection = await db.OpenConnectionAsync();
        await connection.ExecuteAsync("""
            insert into admin_sessions (key_hash, admin_key_hash, ticket, created_at, last_seen_at, expires_at, client_address, user_agent)
            values (@keyHash, @adminKey, @ticket, @now, @now, @expires, left(@address, 64), left(@agent, 500))
            """, new
        {
            keyHash = Hash(key), adminKey, ticket = TicketSerializer.Default.Serialize(ticket), now, expires = Expires(ticket, now),
            address = ticket.Properties.GetString(ClientAddressItem), agent = ticket.Properties.GetString(UserAgentItem),
        });
        return key;
    }

    public async Task RenewAsync(string key, AuthenticationTicket ticket)
    {
        var now = Now();
        await using var connection = await db.OpenConnectionAsync();
        await connection.ExecuteAsync("""
            update admin_sessions set ticket = @ticket, last_seen_at = @now, expires_at = @expires
            where key_hash = @keyHash and revoked_at is null
            """, new { keyHash = Hash(key), ticket = TicketSerializer.Default.Serialize(ticket), now, expires = Expires(ticket, now) });
    }

    public async Task<AuthenticationTicket?> RetrieveAsync(string key)
    {
        var adminKey = AdminKeyHash();
        await using var connection = await db.OpenConnectionAsync();
        var row = await connection.QuerySingleOrDefaultAsync<(long Id, byte[] Ticket, byte[] AdminKey)?>("""
            select id, ticket, admin_key_hash from admin_sessions where key_hash = @keyHash and revoked_at is null and expires_at > @now
            """, new { keyHash = Hash(key), now = Now() });
        if (row is not { } session) return null;
        if (adminKey is null || !CryptographicOperations.FixedTimeEquals(adminKey, session.AdminKey))
        {
            await connection.ExecuteAsync("update admin_sessions set revoked_at = @now, revoked_reason = 'admin key changed' where id = @Id and revoked_at is null",
                new { session.Id, now = Now() });
            return null;
        }
        return TicketSerializer.Default.Deserialize(session.Ticket);
    }

    /// <summary>Sign-out: the session is revoked, so the cookie opens nothing any more, wherever it was copied to.</summary>
    public async Task RemoveAsync(string key)
    {
        await using var connection = await db.OpenConnectionAsync();
        await connection.ExecuteAsync("update admin_sessions set revoked_at = @now, revoked_reason = 'signed out' where key_hash = @keyHash and revoked_at is null",
            new { keyHash = Hash(key), now = Now() });
    }

    /// <summary>The open sessions (opened with the current admin key, not revoked, not expired), newest first.</summary>
    public async Task<IReadOnlyList<AdminSession>> ListAsync(CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return (await connection.QueryAsync<AdminSession>(new CommandDefinition("""
            select id as Id, created_at as CreatedAt, last_seen_at as LastSeenAt, expires_at as ExpiresAt, client_address as ClientAddress, user_agent as UserAgent
            from admin_sessions
            where revoked_at is null and expires_at > @now and admin_key_hash = @adminKey
            order by id desc
            """, new { now = Now(), adminKey = AdminKeyHash() ?? new byte[32] }, cancellationToken: ct))).ToList();
    }

    /// <summary>Ends one session; false when no open session has this id.</summary>
    public async Task<bool> RevokeAsync(long id, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return await connection.ExecuteAsync(new CommandDefinition(
            "update admin_sessions set revoked_at = @now, revoked_reason = 'revoked by an admin' where id = @id and revoked_at is null and expires_at > @now",
            new { id, now = Now() }, cancellationToken: ct)) == 1;
    }

    private byte[]? AdminKeyHash() =>
        options.Value.AdminApiKey is { Length: > 0 } key ? SHA256.HashData(Encoding.UTF8.GetBytes("newsletter/admin-session\n" + key)) : null;

    private static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    private static DateTime Expires(AuthenticationTicket ticket, DateTime now) =>
        ticket.Properties.ExpiresUtc?.UtcDateTime ?? now + DefaultLifetime;

    private DateTime Now() => clock.GetUtcNow().UtcDateTime;
}
