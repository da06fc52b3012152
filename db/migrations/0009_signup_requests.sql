-- A sign-up from the public form for an address that is already on the list (pending or
-- unsubscribed) may come from anyone: its choices wait here and replace the subscriber's own only
-- when the owner confirms through the mailed link.

alter table subscribers
    add column requested_name     text check (length(requested_name) <= 100),
    add column requested_cadence  text check (requested_cadence in ('weekly', 'daily')),
    add column requested_language text check (requested_language in ('ko', 'en', 'both'));
