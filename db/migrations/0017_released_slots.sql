-- A slot that comes due (a cadence, zone, hour and, for weekly readers, weekday, in one run) is
-- released in one row; its readers' deliveries are then written a batch at a time as the workers
-- need them, each batch in one transaction with the slot's cursor (the last reader taken, by id).
-- The hour's job writes a row per slot instead of two per reader and index entries for each, and a
-- batch cut short by a crash is rolled back whole and written again by the next worker.
create table run_slots (
    run_id            bigint not null references runs (id),
    zone              text not null,
    hour              smallint not null check (hour between 0 and 23),
    weekday           smallint not null check (weekday between -1 and 6), -- -1: every day (daily)
    -- The defaults in force when the slot came due: a reader who chose no zone or hour belongs to
    -- the slot of the defaults, and a change of configuration must not move readers between batches.
    default_zone      text not null,
    default_hour      smallint not null,
    default_day       smallint not null,
    released_at       timestamptz not null,
    readers           integer not null,                 -- the slot's readers when it came due
    taken             integer not null default 0,       -- readers read into batches so far
    after_subscriber  bigint not null default 0,        -- the cursor: every reader up to this id is taken
    done              boolean not null default false,
    primary key (run_id, zone, hour, weekday)
);

-- Workers look for slots still to write with this index (almost always empty).
create index run_slots_pending on run_slots (released_at, run_id) where not done;

-- A slot's readers in the order of the cursor: the slot index, keyed by id after the slot.
drop index subscribers_local_slot;
create index subscribers_local_slot on subscribers (cadence, time_zone, delivery_hour, id)
    include (weekly_day, issues_from) where status = 'active';
