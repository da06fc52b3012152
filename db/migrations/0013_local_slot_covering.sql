-- The slot index carries what the hourly enqueue reads of each reader, so a slot's readers are an
-- index-only scan: one zone's slice of a million readers is a few thousand index pages, not a
-- heap page per reader.
drop index subscribers_local_slot;
create index subscribers_local_slot on subscribers (cadence, time_zone, delivery_hour)
    include (id, weekly_day, issues_from) where status = 'active';
