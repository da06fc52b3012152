using Npgsql;

namespace Newsletter.Delivery;

/// <summary>
/// A lane's state changes, collected and written in one round trip and one transaction: the
/// outcomes of the messages sent since the last write travel with the next 'sending' mark.
/// Holds one connection for the lane's batch.
/// </summary>
internal sealed class LedgerWriter(NpgsqlDataSource db) : IAsyncDisposable
{
    private readonly List<NpgsqlBatchCommand> _pending = [];
    private NpgsqlConnection? _connection;

    /// <summary>Adds a statement with positional parameters ($1, $2, …) to the next write.</summary>
    public void Add(string sql, params object?[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values) command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
        _pending.Add(command);
    }

    /// <summary>Writes what was added.</summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        if (_pending.Count == 0) return;
        await WriteAsync(async batch => await batch.ExecuteNonQueryAsync(ct), ct);
    }

    /// <summary>Writes what was added, ending with 'sending' marks; returns the ids they marked.</summary>
    public async Task<HashSet<long>> FlushMarkedAsync(CancellationToken ct)
    {
        var marked = new HashSet<long>();
        await WriteAsync(async batch =>
        {
            await using var reader = await batch.ExecuteReaderAsync(ct);
            do
            {
                while (await reader.ReadAsync(ct)) marked.Add(reader.GetInt64(0));
            }
            while (await reader.NextResultAsync(ct));
        }, ct);
        return marked;
    }

    private async Task WriteAsync(Func<NpgsqlBatch, Task> execute, CancellationToken ct)
    {
        try
        {
            _connection ??= await db.OpenConnectionAsync(ct);
            await using var batch = new NpgsqlBatch(_connection);
            foreach (var command in _pending) batch.BatchCommands.Add(command);
            await execute(batch);
        }
        catch
        {
            // A broken connection is not reused; the next write opens a fresh one.
            if (_connection is not null) await _connection.DisposeAsync();
            _connection = null;
            throw;
        }
        finally
        {
            _pending.Clear();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null) await _connection.DisposeAsync();
    }
}
