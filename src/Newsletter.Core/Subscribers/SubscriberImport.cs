using System.Globalization;
using Dapper;
using Microsoft.Extensions.Options;
using Newsletter.Configuration;
using Newsletter.Validation;
using Npgsql;
using NpgsqlTypes;

namespace Newsletter.Subscribers;

/// <summary>A row that was not imported: its line, the field and why.</summary>
public sealed record ImportProblem(long Line, string Field, string Reason);

/// <summary>What an import did.</summary>
public sealed record ImportReport(long Rows, long Inserted, long Updated, long Unchanged, long Rejected, IReadOnlyList<ImportProblem> Problems)
{
    /// <summary>At most this many problems are listed; <see cref="Rejected"/> counts them all.</summary>
    public const int MaxListed = 1000;
}

/// <summary>
/// Imports and exports subscribers as CSV (<c>email,name,cadence,language</c>, header row, only
/// email required). Valid rows are streamed into a staging table with binary COPY and merged in
/// one transaction; invalid and duplicate rows are reported with their line and do not stop the
/// others. A problem with the file itself (not UTF-8, a broken quote, a wrong header, too many
/// rows) imports nothing. Addresses that were erased are suppressed, and a subscriber who left is
/// never re-activated by an import.
/// </summary>
public sealed class SubscriberImport(NpgsqlDataSource db, IOptions<DeliveryOptions> delivery, IOptions<ImportOptions> options, TimeProvider clock)
{
    public static readonly string[] Columns = ["email", "name", "cadence", "language", DeliveryTime.TimeZoneField, DeliveryTime.HourField, DeliveryTime.WeekdayField];

    /// <summary>Columns an export adds; an import accepts and ignores them, so an export imports back.</summary>
    public static readonly string[] ExportOnlyColumns = ["status", "created_at"];

    /// <exception cref="InputException">The file cannot be imported; nothing was.</exception>
    public async Task<ImportReport> ImportAsync(Stream csv, SubscriberStatus status, Action<long>? rowsRead = null, CancellationToken ct = default)
    {
        if (status is not (SubscriberStatus.Active or SubscriberStatus.Pending))
            throw new InputException("status", "must be active or pending");
        using var reader = new CsvReader(csv);
        var header = reader.Read() ?? throw new InputException("csv", "the file is empty: expected a header row with the columns email,name,cadence,language");
        var index = Header(header);

        var problems = new List<ImportProblem>();
        long rejected = 0;
        void Reject(long line, string field, string reason)
        {
            rejected++;
            if (problems.Count < ImportReport.MaxListed) problems.Add(new ImportProblem(line, field, reason));
        }

        var now = clock.GetUtcNow().UtcDateTime;
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await connection.ExecuteAsync(new CommandDefinition("""
            create temporary table import_rows (line bigint not null, email text not null, name text, cadence text, language text,
                time_zone text, delivery_hour smallint, weekly_day smallint) on commit drop
            """, transaction: tx, cancellationToken: ct));

        long rows = 0;
        var max = options.Value.MaxRows;
        await using (var copy = await connection.BeginBinaryImportAsync("copy import_rows (line, email, name, cadence, language, time_zone, delivery_hour, weekly_day) from stdin (format binary)", ct))
        {
            while (reader.Read() is { } record)
            {
                var line = reader.RecordLine;
                if (record is [""]) continue; // a blank line
                if (++rows > max) throw new InputException("csv", $"more than {max.ToString("N0", CultureInfo.InvariantCulture)} rows (Newsletter__Import__MaxRows); split the file");
                if (rows % 10_000 == 0) rowsRead?.Invoke(rows);
                if (record.Count != header.Count)
                {
                    Reject(line, "csv", $"expected {header.Count} fields, found {record.Count}");
                    continue;
                }
                // A person's text goes to the shared rules as it is (they trim what may be trimmed),
                // less an export's neutralising quote (see CsvReader.ForSpreadsheet); a choice is
                // trimmed, and left out when blank.
                string? Text(string name) => index.TryGetValue(name, out var i) && record[i].Length > 0 ? CsvReader.FromSpreadsheet(record[i]) : null;
                string? Choice(string name, bool lower = true) =>
                    index.TryGetValue(name, out var i) && record[i].Trim() is { Length: > 0 } v ? lower ? v.ToLowerInvariant() : v : null;
                NewSubscriber valid;
                try
                {
                    var time = DeliveryTime.Parse(Choice(DeliveryTime.TimeZoneField, lower: false), Choice(DeliveryTime.HourField), Choice(DeliveryTime.WeekdayField));
                    valid = NewSubscriber.Create(Text("email"), Text("name"), Choice("cadence"), Choice("language"), time);
                }
                catch (InputException e)
                {
                    Reject(line, e.Field, e.Rule);
                    continue;
                }
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(line, NpgsqlDbType.Bigint, ct);
                await copy.WriteAsync(valid.Email, NpgsqlDbType.Text, ct);
                await WriteNullableAsync(copy, valid.Name, ct);
                await WriteNullableAsync(copy, Choice("cadence") is null ? null : Wire.Name(valid.Cadence), ct);
                await WriteNullableAsync(copy, Choice("language") is null ? null : Wire.Name(valid.Language), ct);
                await WriteNullableAsync(copy, valid.Time?.TimeZone, ct);
                if (valid.Time?.Hour is { } hour) await copy.WriteAsync((short)hour, NpgsqlDbType.Smallint, ct); else await copy.WriteNullAsync(ct);
                if (valid.Time?.WeeklyDay is { } day) await copy.WriteAsync((short)day, NpgsqlDbType.Smallint, ct); else await copy.WriteNullAsync(ct);
            }
            await copy.CompleteAsync(ct);
        }
        rowsRead?.Invoke(rows);

        // Duplicates within the file: the first occurrence wins.
        foreach (var (line, first) in await connection.QueryAsync<(long, long)>(new CommandDefinition("""
            with ranked as (
                select line, first_value(line) over w as first, row_number() over w as n
                from import_rows window w as (partition by lower(email) order by line)
            ),
            dropped as (delete from import_rows i using ranked r where i.line = r.line and r.n > 1 returning r.line, r.first)
            select line, first from dropped order by line
            """, transaction: tx, cancellationToken: ct, commandTimeout: 0)))
            Reject(line, "email", $"the same address as line {first}");

        foreach (var line in await connection.QueryAsync<long>(new CommandDefinition("""
            with dropped as (
                delete from import_rows i using suppressions x
                where x.email_hash = sha256(convert_to(lower(i.email), 'UTF8'))
                returning i.line
            )
            select line from dropped order by line
            """, transaction: tx, cancellationToken: ct, commandTimeout: 0)))
            Reject(line, "email", "the address was erased and is suppressed");

        // Existing subscribers: the file's name, cadence, language and delivery time, where it gives them; their status stays.
        var updated = await connection.ExecuteAsync(new CommandDefinition("""
            update subscribers s set name = coalesce(i.name, s.name), cadence = coalesce(i.cadence, s.cadence),
                language = coalesce(i.language, s.language), time_zone = coalesce(i.time_zone, s.time_zone),
                delivery_hour = coalesce(i.delivery_hour, s.delivery_hour), weekly_day = coalesce(i.weekly_day, s.weekly_day), updated_at = @now
            from import_rows i
            where lower(s.email) = lower(i.email) and s.status not in ('unsubscribed', 'bounced', 'complained')
              and (coalesce(i.name, s.name) is distinct from s.name or coalesce(i.cadence, s.cadence) <> s.cadence
                   or coalesce(i.language, s.language) <> s.language or coalesce(i.time_zone, s.time_zone) is distinct from s.time_zone
                   or coalesce(i.delivery_hour, s.delivery_hour) is distinct from s.delivery_hour
                   or coalesce(i.weekly_day, s.weekly_day) is distinct from s.weekly_day)
            """, new { now }, tx, cancellationToken: ct, commandTimeout: 0));
        foreach (var line in await connection.QueryAsync<long>(new CommandDefinition("""
            select i.line from import_rows i join subscribers s on lower(s.email) = lower(i.email)
            where s.status in ('unsubscribed', 'bounced', 'complained') order by i.line
            """, transaction: tx, cancellationToken: ct, commandTimeout: 0)))
            Reject(line, "email", "the subscriber left (unsubscribed, bounced or complained) and is not re-added");
        var existing = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "select count(*) from import_rows i join subscribers s on lower(s.email) = lower(i.email) where s.status not in ('unsubscribed', 'bounced', 'complained')",
            transaction: tx, cancellationToken: ct, commandTimeout: 0));

        var active = status == SubscriberStatus.Active;
        var inserted = await connection.ExecuteAsync(new CommandDefinition($"""
            with added as (
                insert into subscribers (email, name, cadence, language, time_zone, delivery_hour, weekly_day, status, created_at, updated_at, confirmed_at,
                                         issues_from, confirmation_requested_at)
                select i.email, i.name, coalesce(i.cadence, 'weekly'), coalesce(i.language, 'ko'), i.time_zone, i.delivery_hour, i.weekly_day, @status, @now, @now,
                       case when @active then @now end,
                       case when @active then {SubscriberStore.IssuesFromNow} end,
                       case when @active then null else @now end
                from import_rows i
                where not exists (select 1 from subscribers s where lower(s.email) = lower(i.email))
                order by i.line
                on conflict do nothing
                returning id
            )
            insert into subscription_events (subscriber_id, at, event, source, detail)
            select id, @now, 'subscribed', 'admin', 'import' from added
            """, new { status = Wire.Name(status), now, active, backfill = delivery.Value.BackfillLatest }, tx, cancellationToken: ct, commandTimeout: 0));
        await tx.CommitAsync(ct);
        problems.Sort((a, b) => a.Line.CompareTo(b.Line));
        return new ImportReport(rows, inserted, updated, existing - updated, rejected, problems);
    }

    private static Task WriteNullableAsync(NpgsqlBinaryImporter copy, string? value, CancellationToken ct) =>
        value is null ? copy.WriteNullAsync(ct) : copy.WriteAsync(value, NpgsqlDbType.Text, ct);

    private static Dictionary<string, int> Header(IReadOnlyList<string> header)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < header.Count; i++)
        {
            var name = header[i].Trim().ToLowerInvariant();
            if (!Columns.Contains(name) && !ExportOnlyColumns.Contains(name))
                throw new InputException("csv", $"line 1: unknown column '{TextRules.Shorten(header[i])}'; the columns are {string.Join(',', Columns)}");
            if (!index.TryAdd(name, i)) throw new InputException("csv", $"line 1: the column '{name}' appears twice");
        }
        if (!index.ContainsKey("email")) throw new InputException("csv", "line 1: the header has no 'email' column");
        return index;
    }

    /// <summary>Writes subscribers as CSV (email, name, cadence, language, status, created_at, then the delivery time: time_zone, hour, weekday), streamed from the database.</summary>
    public async Task ExportAsync(TextWriter writer, SubscriberStatus? status, CancellationToken ct = default)
    {
        await writer.WriteAsync("email,name,cadence,language,status,created_at,time_zone,hour,weekday\r\n");
        await using var connection = await db.OpenConnectionAsync(ct);
        await using var command = new NpgsqlCommand("""
            select email, name, cadence, language, status, created_at, time_zone, delivery_hour, weekly_day from subscribers
            where @status::text is null or status = @status::text order by id
            """, connection);
        command.Parameters.AddWithValue("status", NpgsqlDbType.Text, status is { } s ? Wire.Name(s) : DBNull.Value);
        await using var rows = await command.ExecuteReaderAsync(System.Data.CommandBehavior.SequentialAccess, ct);
        while (await rows.ReadAsync(ct))
        {
            CsvReader.WriteField(writer, rows.GetString(0));
            writer.Write(',');
            CsvReader.WriteField(writer, rows.IsDBNull(1) ? null : rows.GetString(1));
            writer.Write(',');
            writer.Write(rows.GetString(2));
            writer.Write(',');
            writer.Write(rows.GetString(3));
            writer.Write(',');
            writer.Write(rows.GetString(4));
            writer.Write(',');
            writer.Write(rows.GetDateTime(5).ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            writer.Write(',');
            if (!rows.IsDBNull(6)) writer.Write(rows.GetString(6));
            writer.Write(',');
            if (!rows.IsDBNull(7)) writer.Write(rows.GetInt16(7).ToString(CultureInfo.InvariantCulture));
            writer.Write(',');
            if (!rows.IsDBNull(8)) writer.Write(DeliveryTime.WeekdayName((DayOfWeek)rows.GetInt16(8)));
            await writer.WriteAsync("\r\n");
        }
        await writer.FlushAsync(ct);
    }
}
