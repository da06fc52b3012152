-- The delivery ledger: runs (one per cadence and scheduled period, or one broadcast), a delivery
-- per subscriber in a run, and a receipt per subscriber and issue. The receipts' primary key is
-- what guarantees that an issue reaches a subscriber at most once, whatever races or restarts.

-- The publication time from which a subscriber receives issues: set when they become active
-- (moved back to the latest issue when new subscribers get it on confirmation).
alter table subscribers add column issues_from timestamptz;
update subscribers set issues_from = coalesce(confirmed_at, created_at) where status = 'active';

create table runs (
    id            bigint generated always as identity primary key,
    kind          text not null check (kind in ('daily', 'weekly', 'broadcast')),
    -- The scheduled period (the local date of the firing in the schedule's time zone); null for runs an admin started.
    period        date,
    issue_id      bigint references issues (id),
    status        text not null default 'sending' check (status in ('sending', 'paused', 'done', 'cancelled')),
    pause_reason  text,
    total         integer not null default 0,
    created_at    timestamptz not null default now(),
    finished_at   timestamptz,
    check ((kind = 'broadcast') = (issue_id is not null))
);

-- One run per cadence and period, and at most one open run per cadence (or per broadcast issue):
-- a second firing, a retried job or a second node finds the existing run instead of making another.
create unique index runs_one_per_period on runs (kind, period) where period is not null;
create unique index runs_one_open_per_cadence on runs (kind) where kind <> 'broadcast' and status in ('sending', 'paused');
create unique index runs_one_open_per_broadcast on runs (issue_id) where kind = 'broadcast' and status in ('sending', 'paused');

-- queued -> claimed (leased by a worker, not yet handed to SMTP) -> sending (SMTP under way)
-- -> sent | retrying | failed | uncertain; cancelled when the subscriber left before the send,
-- skipped when a concurrent run took every issue of this delivery.
create table deliveries (
    id               bigint generated always as identity primary key,
    run_id           bigint not null references runs (id),
    subscriber_id    bigint not null references subscribers (id) on delete cascade,
    status           text not null default 'queued'
                     check (status in ('queued', 'claimed', 'sending', 'sent', 'retrying', 'failed', 'uncertain', 'cancelled', 'skipped')),
    attempts         integer not null default 0,
    next_attempt_at  timestamptz not null default now(),
    lease_until      timestamptz,
    message_id       text,
    last_error       text,
    sent_at          timestamptz,
    updated_at       timestamptz not null default now(),
    unique (run_id, subscriber_id)
);

-- Workers look for due work with this index.
create index deliveries_due on deliveries (next_attempt_at, id) where status in ('queued', 'retrying');
create index deliveries_leased on deliveries (lease_until) where status in ('claimed', 'sending');
create index deliveries_run_status on deliveries (run_id, status);

create table receipts (
    subscriber_id  bigint not null references subscribers (id) on delete cascade,
    issue_id       bigint not null references issues (id),
    delivery_id    bigint not null references deliveries (id) on delete cascade,
    primary key (subscriber_id, issue_id)
);

create index receipts_delivery on receipts (delivery_id);
