-- Addresses that must never be mailed or re-added by an import or an admin: what is left of an
-- erased subscriber. Only a hash is kept (SHA-256 of the lower-cased address), no personal data.
-- Signing up again through the double opt-in form is the owner's own choice and lifts it.

create table suppressions (
    email_hash  bytea primary key check (length(email_hash) = 32),
    reason      text not null check (reason in ('erased', 'complaint', 'admin')),
    created_at  timestamptz not null default now()
);

-- A published issue can be corrected (a typo, a wrong link); the archive says when.
alter table issues add column corrected_at timestamptz;
