using Dapper;
using Newsletter.Validation;
using Npgsql;

namespace Newsletter.Subscribers;

/// <summary>Subscribers in PostgreSQL. Email lookups are case-insensitive through the <c>lower(email)</c> unique index.</summary>
public sealed class SubscriberStore(NpgsqlDataSource db)
{
    private const string Columns = "id, public_id, email, name, cadence, language, status, created_at, confirmed_at, unsubscribed_at";

    /// <summary>Adds an address the admin vouches for, already active.</summary>
    /// <exception cref="ConflictException">The address is already on the list (in any letter case).</exception>
    public async Task<Subscriber> AddActiveAsync(NewSubscriber subscriber, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        try
        {
            return await connection.QuerySingleAsync<Subscriber>(new CommandDefinition($"""
                insert into subscribers (email, name, cadence, language, status, confirmed_at)
                values (@Email, @Name, @Cadence, @Language, 'active', now())
                returning {Columns}
                """,
                new { subscriber.Email, subscriber.Name, Cadence = Wire.Name(subscriber.Cadence), Language = Wire.Name(subscriber.Language) },
                cancellationToken: ct));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            throw new ConflictException("email", $"'{subscriber.Email}' is already on the list");
        }
    }

    public async Task<Subscriber?> FindByEmailAsync(string email, CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        return await connection.QuerySingleOrDefaultAsync<Subscriber>(new CommandDefinition(
            $"select {Columns} from subscribers where lower(email) = lower(@email)", new { email }, cancellationToken: ct));
    }

    /// <summary>All subscribers in the order they joined, streamed (the list may be large).</summary>
    public async IAsyncEnumerable<Subscriber> ListAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await using var connection = await db.OpenConnectionAsync(ct);
        await foreach (var s in connection.QueryUnbufferedAsync<Subscriber>($"select {Columns} from subscribers order by id").WithCancellation(ct))
            yield return s;
    }
}
