-- The ledger tables take a row per subscriber per run: a million-subscriber digest inserts a
-- million deliveries and a million receipts in one transaction. Foreign-key checks there cost
-- one locked lookup per row and per key (three quarters of the enqueue time), for references
-- that only the service writes, in the same statement that reads the referenced rows.
-- The references stay enforced where they can break, by deletes: runs are never deleted, a
-- published issue cannot be deleted, and deleting subscribers removes their ledger rows.

alter table deliveries drop constraint deliveries_run_id_fkey;
alter table deliveries drop constraint deliveries_subscriber_id_fkey;
alter table receipts drop constraint receipts_subscriber_id_fkey;
alter table receipts drop constraint receipts_issue_id_fkey;
alter table receipts drop constraint receipts_delivery_id_fkey;

create function ledger_forget_subscribers() returns trigger language plpgsql as $$
begin
    delete from receipts r using gone g where r.subscriber_id = g.id;
    delete from deliveries d using gone g where d.subscriber_id = g.id;
    return null;
end
$$;

create trigger subscribers_forget_ledger after delete on subscribers
    referencing old table as gone for each statement execute function ledger_forget_subscribers();

create function ledger_keep_published_issues() returns trigger language plpgsql as $$
begin
    if old.status = 'published' then
        raise exception 'issue % is published and cannot be deleted', old.slug using errcode = 'restrict_violation';
    end if;
    return old;
end
$$;

create trigger issues_keep_published before delete on issues
    for each row execute function ledger_keep_published_issues();

create function ledger_keep_runs() returns trigger language plpgsql as $$
begin
    raise exception 'runs are the send history and cannot be deleted' using errcode = 'restrict_violation';
end
$$;

create trigger runs_keep before delete on runs
    for each statement execute function ledger_keep_runs();
