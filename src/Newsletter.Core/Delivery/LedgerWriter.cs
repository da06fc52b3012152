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

    /// <summary>Writes what was added; returns the number of rows the last statement changed (0 when nothing was pending).</summary>
    public async Task<int> FlushAsync(CancellationToken ct)
    {
        if (_pending.Count == 0) return 0;
        try
        {
            _connection ??= await db.OpenConnectionAsync(ct);
            await using var batch = new NpgsqlBatch(_connection);
            foreach (var command in _pending) batch.BatchCommands.Add(command);
            await batch.ExecuteNonQueryAsync(ct);
            return batch.BatchCommands[^1].RecordsAffected;
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
