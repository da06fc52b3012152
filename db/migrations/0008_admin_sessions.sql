-- Dashboard sessions kept on the server: the cookie holds only a random session key, whose
-- SHA-256 is stored here (never the key itself). A session ends when it expires, on sign-out
-- (revoked), by an admin's revocation, or when the admin key changes (admin_key_hash no longer
-- matches the configured key).

create table admin_sessions (
    id              bigint generated always as identity primary key,
    key_hash        bytea not null unique check (length(key_hash) = 32),
    admin_key_hash  bytea not null check (length(admin_key_hash) = 32),
    ticket          bytea not null,
    created_at      timestamptz not null,
    last_seen_at    timestamptz not null,
    expires_at      timestamptz not null,
    revoked_at      timestamptz,
    revoked_reason  text,
    client_address  text,
    user_agent      text
);

create index admin_sessions_open on admin_sessions (expires_at) where revoked_at is null;
