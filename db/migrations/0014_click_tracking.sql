-- Click tracking: which papers readers open, counted for people and not for link scanners.

-- A reader may ask for their clicks not to be counted: their digests then carry the plain links.
alter table subscribers add column click_tracking boolean not null default true;

alter table subscription_events drop constraint subscription_events_event_check;
alter table subscription_events add constraint subscription_events_event_check
    check (event in ('subscribed', 'confirmed', 'resubscribed', 'unsubscribed', 'cadence_changed', 'language_changed', 'name_changed', 'bounced',
                     'delivery_time_changed', 'click_tracking_changed'));

-- Every request to a tracked link, kept for Newsletter__Tracking__KeepRequests for audit, then
-- deleted (the counts stay). `reader` is a keyed hash of the delivery (which requests came from
-- one message), not the delivery: it names no one. `delivery_id` is kept only in per-subscriber
-- mode. `verdict` is the filter's: pending (a GET waiting out the burst window), human, head,
-- agent, too-soon, burst or rate-limited.
create table click_requests (
    id            bigint generated always as identity primary key,
    at            timestamptz not null,
    reader        bytea not null,
    delivery_id   bigint,
    issue_id      bigint not null,
    item          smallint not null,
    link          smallint not null,
    language      text not null,
    cadence       text not null,
    method        text not null,
    agent         text not null,
    verdict       text not null check (verdict in ('pending', 'human', 'head', 'agent', 'too-soon', 'burst', 'rate-limited')),
    counted       boolean not null default false,
    first_link    boolean not null default false,
    first_paper   boolean not null default false,
    first_issue   boolean not null default false
);
create index click_requests_reader on click_requests (reader, at);
create index click_requests_open on click_requests (at) where not counted;
create index click_requests_at on click_requests (at);
create index click_requests_delivery on click_requests (delivery_id) where delivery_id is not null;

-- The counts, kept for good: requests per verdict, and for human requests how many were a
-- reader's first of that link, of that paper, and of the issue (their sums are unique clickers).
create table click_counts (
    issue_id        bigint not null references issues (id) on delete cascade,
    item            smallint not null,
    link            smallint not null,
    language        text not null,
    cadence         text not null,
    verdict         text not null,
    requests        bigint not null default 0,
    clickers        bigint not null default 0,
    paper_clickers  bigint not null default 0,
    issue_clickers  bigint not null default 0,
    primary key (issue_id, item, link, language, cadence, verdict)
);

-- Per-subscriber mode only: who opened which link (first time). Erasing a reader erases these.
create table clicks (
    subscriber_id  bigint not null references subscribers (id) on delete cascade,
    issue_id       bigint not null references issues (id) on delete cascade,
    item           smallint not null,
    link           smallint not null,
    first_at       timestamptz not null,
    primary key (issue_id, item, link, subscriber_id)
);
create index clicks_subscriber on clicks (subscriber_id);

-- The deliveries of erased readers, by number only (nothing names anyone): their tracked links
-- answer 404. The service keeps this list in memory, reading what was added since it last looked.
create table erased_deliveries (
    seq          bigint generated always as identity primary key,
    delivery_id  bigint not null
);

-- Erasing a reader also removes the raw requests that carried their delivery, and marks their
-- deliveries erased.
create or replace function ledger_forget_subscribers() returns trigger language plpgsql as $$
begin
    delete from click_requests c using deliveries d, gone g where c.delivery_id = d.id and d.subscriber_id = g.id;
    insert into erased_deliveries (delivery_id) select d.id from deliveries d join gone g on d.subscriber_id = g.id;
    delete from receipts r using gone g where r.subscriber_id = g.id;
    delete from deliveries d using gone g where d.subscriber_id = g.id;
    return null;
end
$$;
