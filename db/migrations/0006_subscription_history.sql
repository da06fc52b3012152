-- Every change of a subscription, with where it came from; and the state of the confirmation
-- mail, which a background sender delivers so the sign-up page answers alike for every address.

create table subscription_events (
    id             bigint generated always as identity primary key,
    subscriber_id  bigint not null references subscribers (id) on delete cascade,
    at             timestamptz not null,
    event          text not null check (event in ('subscribed', 'confirmed', 'resubscribed', 'unsubscribed',
                                                  'cadence_changed', 'language_changed', 'name_changed', 'bounced')),
    source         text not null check (source in ('one-click', 'page', 'preferences', 'admin', 'bounce')),
    detail         text check (length(detail) <= 500),
    client_address text check (length(client_address) <= 64),
    user_agent     text check (length(user_agent) <= 500)
);

create index subscription_events_subscriber on subscription_events (subscriber_id, id);

-- Asked for: a confirmation mail is due when requested after the last one sent.
alter table subscribers add column confirmation_requested_at timestamptz;
alter table subscribers add column confirmation_sent_at timestamptz;
create index subscribers_confirmation_due on subscribers (confirmation_requested_at)
    where status = 'pending' and confirmation_requested_at is not null;

-- ASP.NET Core data-protection keys (antiforgery tokens), shared by every process of the service.
create table data_protection_keys (
    id    bigint generated always as identity primary key,
    name  text not null unique,
    xml   text not null
);
