-- Bounces and complaints that came back after the handoff: one row per report and delivery (the
-- same report delivered twice counts once), linked to the delivery, its run and its subscriber
-- (erasing a subscriber erases their bounces).

create table bounce_events (
    id             bigint generated always as identity primary key,
    delivery_id    bigint not null,
    run_id         bigint not null,
    subscriber_id  bigint not null references subscribers (id) on delete cascade,
    kind           text not null check (kind in ('hard', 'soft', 'block', 'complaint')),
    status         text check (length(status) <= 16),
    reason         text not null check (length(reason) <= 64),
    diagnostic     text check (length(diagnostic) <= 500),
    source         text not null check (source in ('mailbox', 'smtp', 'webhook', 'cli')),
    report_hash    bytea not null check (length(report_hash) = 32),
    received_at    timestamptz not null,
    unique (report_hash, delivery_id)
);

create index bounce_events_subscriber on bounce_events (subscriber_id, received_at);
create index bounce_events_run on bounce_events (run_id, kind);

-- A complaint unsubscribes with its own source in the history.
alter table subscription_events drop constraint subscription_events_source_check;
alter table subscription_events add constraint subscription_events_source_check
    check (source in ('one-click', 'page', 'preferences', 'admin', 'bounce', 'complaint'));
