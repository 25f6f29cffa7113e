-- Tables every service's database has, owned by itsm-store. Service migrations use
-- versions from 1000 up; versions below 1000 are reserved for these.
-- Same tables as migrations/postgres/0001_platform.sql, in SQLite's dialect.

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    stream TEXT NOT NULL,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    resource TEXT NOT NULL,
    action TEXT NOT NULL,
    actor_subject TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    actor_kind INTEGER NOT NULL,
    time INTEGER NOT NULL,
    changes TEXT NOT NULL,
    request_id TEXT NOT NULL
);
CREATE INDEX audit_log_resource ON audit_log (resource, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TABLE idempotency_keys (
    method TEXT NOT NULL,
    request_id TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    resource TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (method, request_id)
);

CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

CREATE TABLE processed_events (
    consumer_group TEXT NOT NULL,
    event_id TEXT NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (consumer_group, event_id)
);

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Small named values the platform's background work keeps between runs (the
-- outbox relay remembers here which incarnation of the bus it published to).
CREATE TABLE platform_state (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
