-- Tables every service's database has, owned by itsm-store. Service migrations use
-- versions from 1000 up; versions below 1000 are reserved for these.

-- Events written in the same transaction as the change they describe; the relay
-- publishes them in id order and marks them sent.
CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    stream TEXT NOT NULL,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Who changed what, from what to what. Append-only: the trigger below refuses
-- updates and deletes, whoever asks.
CREATE TABLE audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resource TEXT NOT NULL,
    action TEXT NOT NULL,
    actor_subject TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    actor_kind INTEGER NOT NULL,
    time BIGINT NOT NULL,
    changes TEXT NOT NULL,
    request_id TEXT NOT NULL
);
CREATE INDEX audit_log_resource ON audit_log (resource, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- Create calls by request_id: a retry returns what the first call created.
CREATE TABLE idempotency_keys (
    method TEXT NOT NULL,
    request_id TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    resource TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (method, request_id)
);

-- Gap-free numbers (INC0000001...): incremented in the creating transaction, so
-- a rollback gives the number back.
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

-- Events a consumer group has handled, written in the handler's transaction.
CREATE TABLE processed_events (
    consumer_group TEXT NOT NULL,
    event_id TEXT NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer_group, event_id)
);

-- Singleton work (the outbox relay, timers) held by one replica at a time.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Small named values the platform's background work keeps between runs (the
-- outbox relay remembers here which incarnation of the bus it published to).
CREATE TABLE platform_state (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
