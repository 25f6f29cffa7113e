-- API keys for service accounts. One row per key; the secret is stored only as
-- its SHA-256 hash (see itsm_auth::apikey). Times are microseconds since the
-- epoch; 0 means "never" for revoked_at and last_used_at, so every column a
-- list filter can name is NOT NULL. The state (active, expired, revoked) is
-- computed from revoked_at and expire_at, never stored.
CREATE TABLE api_keys (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The public half of the key, "itsm_<key_id>_<secret>": how a presented key is found.
    key_id TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    display_name TEXT NOT NULL,
    service_account TEXT NOT NULL,
    -- Role names, sorted, comma-separated (role names never contain commas).
    roles TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by_subject TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    created_by_kind INTEGER NOT NULL,
    expire_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL DEFAULT 0,
    revoked_by_subject TEXT NOT NULL DEFAULT '',
    revoked_by_name TEXT NOT NULL DEFAULT '',
    revoked_by_kind INTEGER NOT NULL DEFAULT 0,
    revoke_reason TEXT NOT NULL DEFAULT '',
    last_used_at BIGINT NOT NULL DEFAULT 0,
    -- The etag: incremented by every change a caller makes (not by last_used_at).
    version BIGINT NOT NULL
);
-- The sortable list fields, each with the id tie-breaker of keyset pages.
CREATE INDEX api_keys_created ON api_keys (created_at, id);
CREATE INDEX api_keys_expire ON api_keys (expire_at, id);
CREATE INDEX api_keys_account ON api_keys (service_account, id);
