-- Subscribers, issues and their paper items, and service settings.

-- A subscriber is addressed in links by public_id (random), never by the serial id.
create table subscribers (
    id               bigint generated always as identity primary key,
    public_id        uuid not null default gen_random_uuid() unique,
    email            text not null check (length(email) between 3 and 254),
    name             text check (length(name) <= 100),
    cadence          text not null default 'weekly' check (cadence in ('weekly', 'daily')),
    language         text not null default 'ko' check (language in ('ko', 'en', 'both')),
    status           text not null default 'pending'
                     check (status in ('pending', 'active', 'unsubscribed', 'bounced', 'complained')),
    created_at       timestamptz not null default now(),
    confirmed_at     timestamptz,
    unsubscribed_at  timestamptz,
    updated_at       timestamptz not null default now()
);

-- One row per address whatever its case: lookups use lower(email) and hit this index.
create unique index subscribers_email_key on subscribers (lower(email));
create index subscribers_status_cadence on subscribers (status, cadence);

create table issues (
    id            bigint generated always as identity primary key,
    slug          text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{0,99}$'),
    title_ko      text,
    title_en      text,
    intro_ko      text,
    intro_en      text,
    period_from   date,
    period_to     date,
    status        text not null default 'draft' check (status in ('draft', 'published')),
    published_at  timestamptz,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    check (title_ko is not null or title_en is not null),
    check (period_from is null or period_to is null or period_from <= period_to),
    check ((status = 'published') = (published_at is not null))
);

create index issues_published on issues (published_at) where status = 'published';

-- Paper items in their order; links is a JSON array of {"label", "url"}.
create table issue_items (
    issue_id     bigint not null references issues (id) on delete cascade,
    position     integer not null check (position >= 0),
    title_ko     text,
    title_en     text,
    summary_ko   text,
    summary_en   text,
    abstract_ko  text,
    abstract_en  text,
    links        jsonb not null default '[]' check (jsonb_typeof(links) = 'array'),
    primary key (issue_id, position),
    check (title_ko is not null or title_en is not null),
    check (summary_ko is not null or summary_en is not null)
);

-- Values the service generates once and keeps (e.g. the link-signing secret when none is configured).
create table settings (
    key         text primary key,
    value       text not null,
    created_at  timestamptz not null default now()
);
