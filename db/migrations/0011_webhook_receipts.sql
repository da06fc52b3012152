-- Calls of a provider's webhook (Amazon SES via SNS, Postmark, Mailgun) already taken, by the
-- provider's id for the call: the same call again is a replay and changes nothing. Stored in the
-- transaction that applies the call; rows older than 30 days are deleted as new ones come in.

create table webhook_receipts (
    provider     text not null check (provider in ('ses', 'postmark', 'mailgun')),
    event_id     text not null check (length(event_id) between 1 and 300),
    received_at  timestamptz not null,
    primary key (provider, event_id)
);

create index webhook_receipts_received on webhook_receipts (received_at);
