-- Same table as migrations/postgres/1000_api_keys.sql, in SQLite's dialect.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    display_name TEXT NOT NULL,
    service_account TEXT NOT NULL,
    roles TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by_subject TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    created_by_kind INTEGER NOT NULL,
    expire_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL DEFAULT 0,
    revoked_by_subject TEXT NOT NULL DEFAULT '',
    revoked_by_name TEXT NOT NULL DEFAULT '',
    revoked_by_kind INTEGER NOT NULL DEFAULT 0,
    revoke_reason TEXT NOT NULL DEFAULT '',
    last_used_at INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL
);
CREATE INDEX api_keys_created ON api_keys (created_at, id);
CREATE INDEX api_keys_expire ON api_keys (expire_at, id);
CREATE INDEX api_keys_account ON api_keys (service_account, id);
