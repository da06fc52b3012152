-- Each reader's own delivery time: a time zone (IANA name), an hour of the local day and, for weekly
-- readers, a weekday (0 Sunday .. 6 Saturday); null means the configured default
-- (Newsletter__Schedule__TimeZone, __DeliveryHour, __WeeklyDay).
alter table subscribers
    add column time_zone text check (time_zone is null or length(time_zone) between 1 and 64),
    add column delivery_hour smallint check (delivery_hour between 0 and 23),
    add column weekly_day smallint check (weekly_day between 0 and 6);

-- The readers of a slot (cadence, zone, hour), found each time a slot comes due.
create index subscribers_local_slot on subscribers (cadence, time_zone, delivery_hour) where status = 'active';

-- A scheduled run (one per cadence and local period) takes deliveries as its readers' hours come
-- due, from the first zone to reach the period to the last, so several can be open at once; it is
-- done once nothing is left and no more slices can come (slices_until).
alter table runs add column slices_until timestamptz;
drop index runs_one_open_per_cadence;
create unique index runs_one_open_per_cadence on runs (kind) where kind <> 'broadcast' and period is null and status in ('sending', 'paused');

-- How far the local-time schedule has enqueued: the end of the last interval whose due slots were
-- enqueued, moved in the same transaction as the enqueue (two processes firing at once make one).
create table schedule_progress (
    name           text primary key,
    covered_until  timestamptz not null
);

-- A change of the delivery time is part of the subscription history.
alter table subscription_events drop constraint subscription_events_event_check;
alter table subscription_events add constraint subscription_events_event_check
    check (event in ('subscribed', 'confirmed', 'resubscribed', 'unsubscribed', 'cadence_changed', 'language_changed', 'name_changed', 'bounced',
                     'delivery_time_changed'));

-- A stranger's sign-up for an existing address holds the form's delivery time too (zone, hour,
-- weekday as text) until the owner confirms.
alter table subscribers add column requested_time text[] check (requested_time is null or cardinality(requested_time) = 3);
